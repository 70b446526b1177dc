"""The operator's fleet: machines, their planograms and their broker logins.

``Fleet`` is the one code path for every change an operator makes to a machine: the HTTP API
and ``vendgate cloud add-machine`` both call it. A machine's broker login is issued here and
pushed to the broker through ``BrokerAccounts`` (Mosquitto's dynamic security; the embedded
broker reads the digests below). The password is shown once and kept only as a digest.

Ordering with the broker: a new machine's password is given to the broker before the machine
is committed (a failed commit leaves a login nobody knows, which harms nobody); a rotation or a
revocation is committed before the broker is told (a broker reading the database refuses the
old login at once, Mosquitto on the call), and every call is safe to repeat: a 502 from a
broker that did not answer is fixed by rotating again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from vendgate.cloud.broker import BrokerAccountError, BrokerAccounts
from vendgate.cloud.clock import as_utc
from vendgate.cloud.db import (
    ClaimCode,
    Machine,
    MachineCredential,
    SessionFactory,
    Slot,
    VendSession,
    transaction,
)
from vendgate.cloud.digests import digest, new_claim_code, new_secret, normal_claim_code
from vendgate.cloud.errors import (
    BrokerUnavailable,
    Conflict,
    InvalidInput,
    InvalidPlanogram,
    NotFound,
)
from vendgate.protocol import Clock
from vendgate.protocol.mqtt import MachineIdError, TopicTree, validate_machine_id

from ._logins import machine_login_holds
from ._service import (
    ITEM_RANGE,
    PRICE_RANGE,
    VAT_RANGE,
    MachineSpec,
    SlotSpec,
    get_machine,
    slots_of,
    upsert_machine,
)
from ._service import NAME_MAX as SLOT_NAME_MAX

UNSET = msgspec.UNSET
PAGE_MAX = 200
TEXT_MAX = 200
# validate_machine_id's rule (the id is a topic level and the broker username), in the schema.
MACHINE_ID_PATTERN = "[A-Za-z0-9_-]{1,64}"


def _span(bounds: range) -> str:
    return f"{bounds.start}..{bounds.stop - 1}"


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class SlotBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One planogram slot. Its bounds are checked by ``SlotSpec`` (not by the schema), so a
    422 names the slot, ``slots[1].price``, whichever route the planogram came through."""

    item: Annotated[int, _about(f"MDB item number, {_span(ITEM_RANGE)}")]
    name: Annotated[str, _about(f"1..{SLOT_NAME_MAX} characters")]
    price: Annotated[int, _about(f"minor units, {_span(PRICE_RANGE)}, at most the ceiling")]
    vat_rate: Annotated[int, _about(f"hundredths of a percent, {_span(VAT_RANGE)}")] = 2500
    stock: Annotated[int | None, _about("items left, if counted")] = None
    enabled: bool = True


class MachineBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=f"^{MACHINE_ID_PATTERN}$")]
    name: Annotated[str, _about(f"1..{TEXT_MAX} characters")]
    location: Annotated[str, _about(f"at most {TEXT_MAX} characters")] = ""
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$", description="ISO 4217")] = "NOK"
    # "planogram": the cloud's prices are charged; "vmc": the machine's own.
    price_mode: Literal["planogram", "vmc"] = "planogram"
    vat_rate: Annotated[int, _about(f"hundredths of a percent, {_span(VAT_RANGE)}")] = 2500
    slots: list[SlotBody] = msgspec.field(default_factory=list)
    # The machine's merchant-callback QR id (Vipps QR API), for machines customers check in to
    # from the Vipps app instead of scanning our URL.
    callback_qr_id: str | None = None


class MachinePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str | msgspec.UnsetType = UNSET
    location: str | msgspec.UnsetType = UNSET
    disabled: bool | msgspec.UnsetType = UNSET


class OpenSession(msgspec.Struct, kw_only=True):
    id: str
    state: str
    created_at: datetime


class MachineView(msgspec.Struct, kw_only=True):
    """A machine and its live state as the cloud knows it."""

    id: str
    name: str
    location: str
    disabled: bool
    currency: str
    price_mode: str
    vat_rate: int
    online: bool
    online_since: datetime | None
    offline_since: datetime | None
    boot_id: str | None
    last_seen_at: datetime | None
    board_state: str | None
    outbox_depth: int | None
    versions: dict[str, str]
    open_session: OpenSession | None
    # The highest enabled price: what a scan reserves (minor units).
    reservation: int
    scan_url: str
    created_at: datetime
    slots: list[SlotBody]


class BrokerLogin(msgspec.Struct, kw_only=True):
    """What the machine logs in to the broker with (the password is shown this once)."""

    username: str
    password: str
    mqtt_url: str
    topic_prefix: str


class CreatedMachine(msgspec.Struct, kw_only=True):
    machine: MachineView
    mqtt: BrokerLogin


class MachinePage(msgspec.Struct, kw_only=True):
    items: list[MachineView]
    # Pass as ``cursor`` for the next page; null on the last one.
    next_cursor: str | None


class ClaimCodeView(msgspec.Struct, kw_only=True):
    machine_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class FleetPolicy:
    """The deployment's limits and addresses for machines (``CloudSettings``)."""

    public_url: str
    # The broker URL machines connect to (not necessarily the cloud's own).
    machine_mqtt_url: str
    # The highest price a slot may have, in minor units: a typo must not reserve 25 000 kr.
    max_price: int = 100_000
    claim_minutes: float = 15.0


class Fleet:
    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        tree: TopicTree,
        accounts: BrokerAccounts,
        policy: FleetPolicy,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._tree = tree
        self._accounts = accounts
        self.policy = policy

    # -- machines ------------------------------------------------------------------------

    async def create(self, body: MachineBody) -> CreatedMachine:
        """A new machine with its planogram and broker login; 409 if the id was ever used."""
        spec = self._spec(body)
        async with transaction(self._sessions) as db:
            if await db.get(Machine, spec.machine_id) is not None:
                raise Conflict(f"machine {spec.machine_id!r} exists (ids are never reused)")
        password = new_secret()
        await self._broker(self._accounts.add(spec.machine_id, password))
        now = self._clock.now()
        try:
            async with transaction(self._sessions) as db:
                await upsert_machine(db, spec, now, self._tree)
                db.add(
                    MachineCredential(
                        machine_id=spec.machine_id, digest=digest(password), issued_at=now
                    )
                )
        except IntegrityError:
            raise Conflict(f"machine {spec.machine_id!r} exists (ids are never reused)") from None
        return CreatedMachine(
            machine=await self.get(spec.machine_id), mqtt=self._login(spec.machine_id, password)
        )

    async def replace(self, body: MachineBody) -> MachineView:
        """Create or replace a machine's description and planogram, keeping its login
        (``vendgate cloud add-machine`` on an existing id); 404 if it does not exist."""
        spec = self._spec(body)
        async with transaction(self._sessions) as db:
            await self._live(db, spec.machine_id)
            machine = await upsert_machine(db, spec, self._clock.now(), self._tree)
            return await self._view(db, machine)

    async def find(
        self,
        *,
        status: str | None = None,
        search: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> MachinePage:
        if not 1 <= limit <= PAGE_MAX:
            raise InvalidInput(f"limit must be 1..{PAGE_MAX}, got {limit}", field="limit")
        query = select(Machine).where(col(Machine.deleted_at).is_(None))
        query = _filtered(query, status, search)
        if cursor is not None:
            query = query.where(col(Machine.id) > _decode_cursor(cursor))
        async with transaction(self._sessions) as db:
            rows = (await db.exec(query.order_by(col(Machine.id)).limit(limit + 1))).all()
            views = [await self._view(db, row) for row in rows[:limit]]
        more = len(rows) > limit
        return MachinePage(items=views, next_cursor=_encode_cursor(views[-1].id) if more else None)

    async def get(self, machine_id: str) -> MachineView:
        async with transaction(self._sessions) as db:
            return await self._view(db, await self._live(db, machine_id))

    async def update(self, machine_id: str, patch: MachinePatch) -> MachineView:
        async with transaction(self._sessions) as db:
            machine = await self._live(db, machine_id)
            if patch.name is not UNSET:
                machine.name = _text("name", patch.name, required=True)
            if patch.location is not UNSET:
                machine.location = _text("location", patch.location, required=False)
            if patch.disabled is not UNSET:
                machine.disabled = patch.disabled
            db.add(machine)
            return await self._view(db, machine)

    async def delete(self, machine_id: str) -> None:
        """Take a machine out of the fleet (its sales stay); 409 while a purchase is open."""
        async with transaction(self._sessions) as db:
            machine = await self._live(db, machine_id)
            if await _open_session(db, machine_id) is not None:
                raise Conflict(f"machine {machine_id!r} has a purchase open; try when it ends")
            machine.deleted_at, machine.disabled = self._clock.now(), True
            db.add(machine)
            await self._revoke_in(db, machine_id)
        await self._broker(self._accounts.remove(machine_id))

    async def put_planogram(self, machine_id: str, slots: Sequence[SlotBody]) -> MachineView:
        """Replace the planogram; sessions already open keep the prices of their scan."""
        specs = self._slot_specs(slots)
        async with transaction(self._sessions) as db:
            machine = await self._live(db, machine_id)
            spec = MachineSpec(
                machine_id=machine.id,
                name=machine.name,
                slots=specs,
                currency=machine.currency,
                callback_qr_id=machine.callback_qr_id,
                price_mode=machine.price_mode,
                vat_rate=machine.vat_rate,
                location=machine.location,
            )
            machine = await upsert_machine(db, spec, self._clock.now(), self._tree)
            return await self._view(db, machine)

    # -- broker logins -------------------------------------------------------------------

    async def rotate(self, machine_id: str) -> BrokerLogin:
        """A new broker password; the old one is refused from now on.

        The digest is committed first: a broker that reads the database (the embedded one)
        then drops the machine's connection, which can only come back with the new password.
        """
        password = new_secret()
        async with transaction(self._sessions) as db:
            await self._live(db, machine_id)
            await self._store_password(db, machine_id, password)
        # add: sets the password, and makes the account of a machine the broker never knew.
        await self._broker(self._accounts.add(machine_id, password))
        await self._broker(self._accounts.enable(machine_id))
        return self._login(machine_id, password)

    async def revoke(self, machine_id: str) -> None:
        """Refuse the machine at the broker (and disconnect it) until it is rotated."""
        async with transaction(self._sessions) as db:
            await self._live(db, machine_id)
            await self._revoke_in(db, machine_id)
        await self._broker(self._accounts.disable(machine_id))

    async def claim_code(self, machine_id: str) -> ClaimCodeView:
        """A one-time code a technician types on the machine (``vendgate edge claim``)."""
        code, now = new_claim_code(), self._clock.now()
        expires = now + timedelta(minutes=self.policy.claim_minutes)
        async with transaction(self._sessions) as db:
            await self._live(db, machine_id)
            db.add(
                ClaimCode(
                    digest=digest(code), machine_id=machine_id, created_at=now, expires_at=expires
                )
            )
        return ClaimCodeView(machine_id=machine_id, code=code, expires_at=expires)

    async def claim(self, code: str) -> BrokerLogin:
        """Trade a claim code, once and before it expires, for a fresh broker login."""
        now = self._clock.now()
        async with transaction(self._sessions) as db:
            row = await db.get(ClaimCode, digest(normal_claim_code(code)), with_for_update=True)
            if row is None or row.used_at is not None or as_utc(row.expires_at) <= now:
                raise NotFound("this claim code is unknown, used or expired; ask for a new one")
            row.used_at = now
            db.add(row)
            machine_id = row.machine_id
        return await self.rotate(machine_id)

    async def authenticate(self, username: str, password: str) -> bool:
        """The embedded broker's check: a live machine, its current password, not revoked."""
        return await machine_login_holds(self._sessions, username, password)

    # -- helpers -------------------------------------------------------------------------

    async def _broker(self, change: Awaitable[None]) -> None:
        try:
            await change
        except BrokerAccountError as error:
            raise BrokerUnavailable(f"the broker did not take the change: {error}") from None

    def _spec(self, body: MachineBody) -> MachineSpec:
        return machine_spec(body, self.policy.max_price)

    def _slot_specs(self, slots: Sequence[SlotBody]) -> list[SlotSpec]:
        return slot_specs(slots, self.policy.max_price)

    async def _live(self, db: AsyncSession, machine_id: str) -> Machine:
        machine = await get_machine(db, machine_id)
        if machine.deleted_at is not None:
            raise NotFound(f"no machine {machine_id!r}")
        return machine

    async def _store_password(self, db: AsyncSession, machine_id: str, password: str) -> None:
        row = await db.get(MachineCredential, machine_id)
        now = self._clock.now()
        if row is None:
            row = MachineCredential(machine_id=machine_id, digest="", issued_at=now)
        row.digest, row.issued_at, row.revoked_at = digest(password), now, None
        db.add(row)

    async def _revoke_in(self, db: AsyncSession, machine_id: str) -> None:
        now = self._clock.now()
        row = await db.get(MachineCredential, machine_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            db.add(row)
        # The broker drops a revoked machine without its last will: record the offline here.
        # (The retained `online` it sent before carries the seq already applied, so a replay
        # of it changes nothing.)
        machine = await db.get(Machine, machine_id)
        if machine is not None and machine.online:
            machine.online, machine.state_since = False, now
            db.add(machine)

    def _login(self, machine_id: str, password: str) -> BrokerLogin:
        return BrokerLogin(
            username=machine_id,
            password=password,
            mqtt_url=self.policy.machine_mqtt_url,
            topic_prefix=self._tree.prefix,
        )

    async def _view(self, db: AsyncSession, machine: Machine) -> MachineView:
        slots = await slots_of(db, machine.id)
        since = as_utc(machine.state_since) if machine.state_since else None
        return MachineView(
            id=machine.id,
            name=machine.name,
            location=machine.location,
            disabled=machine.disabled,
            currency=machine.currency,
            price_mode=machine.price_mode,
            vat_rate=machine.vat_rate,
            online=machine.online,
            online_since=since if machine.online else None,
            offline_since=None if machine.online else since,
            boot_id=machine.boot_id,
            last_seen_at=as_utc(machine.last_seen_at) if machine.last_seen_at else None,
            board_state=machine.board_state,
            outbox_depth=machine.outbox_depth,
            versions=json.loads(machine.versions or "{}"),
            open_session=await _open_session(db, machine.id),
            reservation=max((s.price for s in slots if s.enabled), default=0),
            scan_url=f"{self.policy.public_url.rstrip('/')}/m/{machine.id}",
            created_at=as_utc(machine.created_at),
            slots=[_slot_body(s) for s in slots],
        )


def machine_spec(body: MachineBody, max_price: int) -> MachineSpec:
    """The machine an operator described, checked: a 422 naming the field, or the spec."""
    try:
        validate_machine_id(body.id)
    except MachineIdError as error:
        raise InvalidInput(str(error), field="id") from None
    return MachineSpec(
        machine_id=body.id,
        name=_text("name", body.name, required=True),
        slots=slot_specs(body.slots, max_price),
        currency=_currency(body.currency),
        price_mode=_price_mode(body.price_mode),
        vat_rate=_vat_rate(body.vat_rate),
        location=_text("location", body.location, required=False),
        callback_qr_id=body.callback_qr_id or None,
    )


def slot_specs(slots: Sequence[SlotBody], max_price: int) -> list[SlotSpec]:
    specs: list[SlotSpec] = []
    seen: dict[int, int] = {}
    for index, slot in enumerate(slots):
        where = f"slots[{index}]"
        try:
            spec = SlotSpec(**msgspec.structs.asdict(slot))
        except InvalidPlanogram as error:
            raise InvalidInput(f"{where}: {error.detail}", field=f"{where}.{error.field}") from None
        if spec.price > max_price:
            text = f"{where}: price {spec.price} is above this deployment's ceiling {max_price}"
            raise InvalidInput(text, field=f"{where}.price")
        if spec.item in seen:
            text = f"{where}: item {spec.item} is also slots[{seen[spec.item]}]"
            raise InvalidInput(text, field=f"{where}.item")
        seen[spec.item] = index
        specs.append(spec)
    return specs


def _slot_body(slot: Slot) -> SlotBody:
    return SlotBody(
        item=slot.item,
        name=slot.name,
        price=slot.price,
        vat_rate=slot.vat_rate,
        stock=slot.stock,
        enabled=slot.enabled,
    )


async def _open_session(db: AsyncSession, machine_id: str) -> OpenSession | None:
    query = select(VendSession).where(
        VendSession.machine_id == machine_id, col(VendSession.is_open).is_(True)
    )
    vend = (await db.exec(query)).first()
    if vend is None:
        return None
    return OpenSession(id=vend.id, state=vend.state, created_at=as_utc(vend.created_at))


STATUSES = ("online", "offline", "disabled")


def _filtered(
    query: SelectOfScalar[Machine], status: str | None, search: str | None
) -> SelectOfScalar[Machine]:
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
        if status == "disabled":
            query = query.where(col(Machine.disabled).is_(True))
        else:
            query = query.where(col(Machine.online).is_(status == "online"))
    if search:
        query = query.where(func.lower(Machine.name).contains(search.lower()))
    return query


def _text(field: str, value: str, *, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(text) > TEXT_MAX:
        raise InvalidInput(f"{field} must be at most {TEXT_MAX} characters", field=field)
    return text


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise InvalidInput(
            f"currency must be an ISO 4217 code such as NOK, got {value!r}", field="currency"
        )
    return value


def _price_mode(value: str) -> str:
    if value not in ("planogram", "vmc"):
        raise InvalidInput(
            f"price_mode must be planogram or vmc, got {value!r}", field="price_mode"
        )
    return value


def _vat_rate(value: int) -> int:
    if not 0 <= value <= 10_000:
        text = f"vat_rate must be 0..10000 (hundredths of a percent), got {value}"
        raise InvalidInput(text, field="vat_rate")
    return value


def _encode_cursor(machine_id: str) -> str:
    return base64.urlsafe_b64encode(machine_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        machine_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return validate_machine_id(machine_id)
    except (ValueError, MachineIdError):
        raise InvalidInput("cursor is not one this API gave out", field="cursor") from None


__all__ = [
    "BrokerLogin",
    "ClaimCodeView",
    "CreatedMachine",
    "Fleet",
    "FleetPolicy",
    "MachineBody",
    "MachinePage",
    "MachinePatch",
    "MachineView",
    "SlotBody",
    "machine_spec",
]
