"""The customer's HTML: small, plain, mobile-first, no external assets; text is escaped.

The status page carries ``data-state`` on ``<main id="status">`` (waiting, choose, finishing,
paid, not_charged, cancelled) and keeps it current by polling its JSON endpoint, so a person
and a headless browser can both follow it. Without JavaScript it refreshes itself.
"""

from __future__ import annotations

import json
from html import escape

from vendgate.cloud.errors import MachineUnavailable, Unavailability, VendgateError

from ._service import StatusView

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;padding:1.5em;max-width:30em;"
    "margin-inline:auto;line-height:1.4;color:#222}h1{font-size:1.4em}"
    ".big{font-size:1.2em;font-weight:600}.muted{color:#666}"
)

HEADLINES = {
    "waiting": "Waiting for your approval in Vipps MobilePay…",
    "choose": "Approved! Choose your item on the machine.",
    "finishing": "Finishing up…",
    "paid": "Enjoy!",
    "not_charged": "Nothing was dispensed: you were not charged.",
    "cancelled": "The payment was not completed: you were not charged.",
}

POLL_MS = 1000

SCRIPT = """<script>
(function(){var main=document.getElementById('status');var url=main.dataset.poll;
var H=%(headlines)s;
function show(v){main.dataset.state=v.state;main.dataset.final=String(v.final);
document.getElementById('headline').textContent=H[v.state]||v.state;
document.getElementById('detail').textContent=detail(v);return v.final;}
function detail(v){if(v.state==='paid'){return 'You paid '+v.paid+' and '+v.released+
' was released.'+(v.items.length?' ('+v.items.join(', ')+')':'');}
if(v.state==='choose'){return v.reserved+' is reserved until you are done.';}
if(v.state==='waiting'){return v.reserved+' will be reserved; you pay only for what you get.';}
return '';}
function tick(){fetch(url,{cache:'no-store'}).then(function(r){return r.json();})
.then(function(v){if(!show(v)){setTimeout(tick,%(poll)d);}})
.catch(function(){setTimeout(tick,%(poll)d*3);});}
if(main.dataset.final!=='true'){setTimeout(tick,%(poll)d);}})();
</script>"""


def page(title: str, body: str, extra_head: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style>{extra_head}</head>"
        f"<body>{body}</body></html>"
    )


def detail_text(view: StatusView) -> str:
    if view.state == "paid":
        items = f" ({', '.join(view.items)})" if view.items else ""
        return f"You paid {view.paid} and {view.released} was released.{items}"
    if view.state == "choose":
        return f"{view.reserved} is reserved until you are done."
    if view.state == "waiting":
        return f"{view.reserved} will be reserved; you pay only for what you get."
    return ""


def status_page(view: StatusView, poll_url: str) -> str:
    final = "true" if view.final else "false"
    body = (
        f'<main id="status" data-state="{escape(view.state)}" data-final="{final}" '
        f'data-poll="{escape(poll_url)}">'
        f'<p class="muted">{escape(view.machine)}</p>'
        f'<h1 id="headline">{escape(HEADLINES[view.state])}</h1>'
        f'<p id="detail" class="big">{escape(detail_text(view))}</p></main>'
        + SCRIPT
        % {"headlines": json.dumps(HEADLINES), "poll": POLL_MS}
    )
    refresh = "" if view.final else '<noscript><meta http-equiv="refresh" content="3"></noscript>'
    return page("Your purchase", body, refresh)


UNAVAILABLE_TEXT = {
    Unavailability.OFFLINE: "This machine is offline right now. Please try again later.",
    Unavailability.BUSY: "Someone is buying from this machine right now. Try again in a minute.",
    Unavailability.DISABLED: "This machine is out of order.",
}


def error_page(error: VendgateError) -> str:
    if isinstance(error, MachineUnavailable):
        text = UNAVAILABLE_TEXT[error.reason]
        headline, data_state = error.machine_name, str(error.reason)
    else:
        text, headline, data_state = error.detail, error.title, "error"
    body = (
        f'<main id="status" data-state="{escape(data_state)}" data-final="true">'
        f'<h1 id="headline">{escape(headline)}</h1><p class="big">{escape(text)}</p>'
        '<p class="muted">No payment was made.</p></main>'
    )
    return page(headline, body)
