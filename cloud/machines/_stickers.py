"""A machine's sticker: its QR registered with the Vipps QR API, then drawn by us.

A redirect-mode machine gets a merchant-redirect QR whose id is the machine id and whose target
is the machine's scan URL; the sticker encodes exactly the URL the QR API gives for it
(``Accept: text/targetUrl``), so the target can be moved later without reprinting. A machine in
merchant-callback mode gets its callback QR (``PUT /qr/v1/merchant-callback/{id}``) and the
sticker encodes that QR's content. Both are kept on the machine's row once known, so drawing a
sticker again costs no Vipps call unless the scan URL changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from vendgate.cloud.db import Machine, SessionFactory, transaction
from vendgate.cloud.errors import InvalidInput, NotFound, VendgateError
from vendgate.cloud.stickers import Sticker, sticker_png, sticker_sheet_pdf, sticker_svg
from vendgate.cloud.vipps import VippsClient, VippsConflict, VippsError

TARGET_URL: Final = "text/targetUrl"  # the answer's url: what the QR encodes
LOCATION_MAX = 36  # the QR API's locationDescription limit
SHEET_MAX = 500  # machines on one print sheet


class StickerUnavailable(VendgateError):
    """Vipps did not register the QR (502): nothing to print yet; try again."""

    status_code = 502
    title = "Sticker unavailable"


class Stickers:
    def __init__(self, sessions: SessionFactory, vipps: VippsClient, public_url: str) -> None:
        self._sessions = sessions
        self._vipps = vipps
        self._public_url = public_url.rstrip("/")

    async def png(self, machine_id: str) -> bytes:
        return sticker_png(await self.sticker(machine_id))

    async def svg(self, machine_id: str) -> str:
        return sticker_svg(await self.sticker(machine_id))

    async def sheet(self, machine_ids: Sequence[str]) -> bytes:
        if not machine_ids:
            raise InvalidInput("name at least one machine: ?machine=ID&machine=ID", field="machine")
        if len(machine_ids) > SHEET_MAX:
            raise InvalidInput(f"at most {SHEET_MAX} machines per sheet", field="machine")
        return sticker_sheet_pdf([await self.sticker(m) for m in dict.fromkeys(machine_ids)])

    async def sticker(self, machine_id: str) -> Sticker:
        machine = await self._machine(machine_id)
        url = await self.qr_url(machine)
        return Sticker(url=url, name=machine.name, machine_id=machine.id)

    async def qr_url(self, machine: Machine) -> str:
        """The URL the machine's QR encodes, registering (or re-pointing) the QR if needed."""
        try:
            if machine.callback_qr_id:
                url = await self._callback_url(machine, machine.callback_qr_id)
            else:
                url = await self._redirect_url(machine)
        except VippsError as error:
            raise StickerUnavailable(f"the Vipps QR API refused or failed: {error}") from None
        if url != machine.qr_url:
            async with transaction(self._sessions) as db:
                row = await db.get(Machine, machine.id)
                if row is not None:
                    row.qr_url = url
                    row.redirect_qr_id = None if machine.callback_qr_id else machine.id
                    db.add(row)
        return url

    async def _redirect_url(self, machine: Machine) -> str:
        target = f"{self._public_url}/m/{machine.id}"
        qr = self._vipps.qr
        if machine.redirect_qr_id is None:
            try:
                made = await qr.create_redirect(machine.id, target, image_format=TARGET_URL)
                return made.url
            except VippsConflict:
                pass  # registered before (another replica, or a lost answer): point it here
        current = await qr.get_redirect(machine.id, image_format=TARGET_URL)
        if current.redirect_url != target:
            current = await qr.update_redirect(machine.id, target, image_format=TARGET_URL)
        return current.url

    async def _callback_url(self, machine: Machine, qr_id: str) -> str:
        qr = self._vipps.qr
        await qr.put_callback(qr_id, (machine.location or machine.name)[:LOCATION_MAX])
        return (await qr.get_callback(qr_id)).qr_content

    async def _machine(self, machine_id: str) -> Machine:
        async with transaction(self._sessions) as db:
            machine = await db.get(Machine, machine_id)
        if machine is None or machine.deleted_at is not None:
            raise NotFound(f"no machine {machine_id!r}")
        return machine
