"""The customer's HTML: small, plain, mobile-first, no external assets; text is escaped.

The status page carries ``data-state`` on ``<main id="status">`` (waiting, choose, finishing,
paid, not_charged, cancelled) and keeps it current by polling its JSON endpoint, so a person
and a headless browser can both follow it. Without JavaScript it refreshes itself.

The pages' one stylesheet and one script are inline and fixed at import, so the
Content-Security-Policy (``CONTENT_SECURITY_POLICY``, sent on every response of the app) can
allow exactly them by their SHA-256 digests: no ``'unsafe-inline'``, nothing else runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape

from vendgate.cloud.errors import MachineUnavailable, RateLimited, Unavailability, VendgateError

from ._service import StatusView

# Plain CSS, no assets. The page's look follows ``data-state`` on ``#status`` through attribute
# selectors, so the script only has to change that attribute and two texts.
STYLE = """
*{box-sizing:border-box}
html{color-scheme:light;-webkit-text-size-adjust:100%}
body{margin:0;background:#f3f3f5;color:#1f1f1f;
font:17px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
#status{max-width:30rem;margin:.75rem;padding:1.5rem;background:#fff;border-radius:1rem;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
@media (min-width:32rem){#status{margin:3rem auto}}
h1{font-size:1.45rem;line-height:1.25;margin:0 0 .6rem}
.big{font-size:1.15rem;margin:0}
.muted{color:#5f6368;margin:0 0 1.25rem}
.badge{width:3.5rem;height:3.5rem;border-radius:50%;display:grid;place-items:center;
margin:0 0 1rem;background:#6b6b6b;color:#fff;font-size:1.9rem;font-weight:700}
.badge::after{content:"!"}
[data-state=waiting] .badge,[data-state=finishing] .badge{background:none;
border:.35rem solid #ffd8cb;border-top-color:#ff5b24;animation:spin 1s linear infinite}
[data-state=waiting] .badge::after,[data-state=finishing] .badge::after{content:""}
[data-state=choose] .badge{background:#ff5b24}
[data-state=choose] .badge::after{content:"\\2192"}
[data-state=paid] .badge{background:#1a7f37}
[data-state=paid] .badge::after{content:"\\2713"}
[data-state=not_charged] .badge{background:#2f6fde}
[data-state=not_charged] .badge::after{content:"i"}
[data-state=cancelled] .badge::after{content:"\\00d7"}
@keyframes spin{to{transform:rotate(360deg)}}
@media (prefers-reduced-motion:reduce){.badge{animation:none!important}}
.steps{list-style:none;margin:1.5rem 0 0;padding:1rem 0 0;border-top:1px solid #e6e6e9;
counter-reset:step;color:#5f6368}
.steps li{counter-increment:step;display:flex;align-items:center;gap:.75rem;padding:.3rem 0}
.steps li::before{content:counter(step);flex:none;width:1.8rem;height:1.8rem;border-radius:50%;
display:grid;place-items:center;border:2px solid #c9c9cf;font-size:.9rem;font-weight:600}
[data-state=waiting] .s1,[data-state=choose] .s2,[data-state=finishing] .s3{color:#1f1f1f;
font-weight:600}
[data-state=waiting] .s1::before,[data-state=choose] .s2::before,
[data-state=finishing] .s3::before{border-color:#ff5b24;color:#c2410c}
[data-state=choose] .s1::before,[data-state=finishing] :is(.s1,.s2)::before,
:is([data-state=paid],[data-state=not_charged]) li::before{content:"\\2713";
background:#1a7f37;border-color:#1a7f37;color:#fff}
[data-state=cancelled] .steps{display:none}
.note{display:none;margin:1.25rem 0 0;color:#5f6368}
[data-final=true] .note{display:block}
.receipt{display:none}
[data-state=paid] .receipt{display:inline}
"""

HEADLINES = {
    "waiting": "Waiting for your approval in Vipps MobilePay…",
    "choose": "Approved! Choose your item on the machine.",
    "finishing": "Finishing up…",
    "paid": "Enjoy!",
    "not_charged": "Nothing was dispensed: you were not charged.",
    "cancelled": "The payment was not completed: you were not charged.",
}

POLL_MS = 1000

STEPS = (
    '<ol class="steps" aria-label="How it works">'
    '<li class="s1">Approve in Vipps MobilePay</li>'
    '<li class="s2">Choose your item on the machine</li>'
    '<li class="s3">Pay only for what you get</li></ol>'
)

SCRIPT_TEMPLATE = """
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
function tick(){fetch(url,{cache:'no-store'}).then(function(r){if(!r.ok){throw r;}return r.json();})
.then(function(v){if(!show(v)){setTimeout(tick,%(poll)d);}})
.catch(function(){setTimeout(tick,%(poll)d*3);});}
if(main.dataset.final!=='true'){setTimeout(tick,%(poll)d);}})();
"""
SCRIPT = SCRIPT_TEMPLATE % {"headlines": json.dumps(HEADLINES), "poll": POLL_MS}
CSS = STYLE.strip()


def _digest(inline: str) -> str:
    """A CSP hash source: the SHA-256 of the element's text exactly as sent."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode() + "'"


# Nothing by default; the page's own script and style; its polling (same origin); no framing
# (clickjacking), no <base> rewriting links, forms (there are none) only to us.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src {_digest(SCRIPT)}",
        f"style-src {_digest(CSS)}",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def page(title: str, body: str, extra_head: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style>{extra_head}</head>"
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
        '<div class="badge" aria-hidden="true"></div>'
        '<div aria-live="polite">'
        f'<h1 id="headline">{escape(HEADLINES[view.state])}</h1>'
        f'<p id="detail" class="big">{escape(detail_text(view))}</p></div>'
        f"{STEPS}"
        '<p class="note"><span class="receipt">Your receipt is in Vipps MobilePay. </span>'
        f"You can close this page.</p></main><script>{SCRIPT}</script>"
    )
    refresh = "" if view.final else '<noscript><meta http-equiv="refresh" content="3"></noscript>'
    return page("Your purchase", body, refresh)


UNAVAILABLE_TEXT = {
    Unavailability.OFFLINE: "This machine is offline right now. Please try again later.",
    Unavailability.BUSY: "Someone is buying from this machine right now. Try again in a minute.",
    Unavailability.DISABLED: "This machine is out of order.",
}


def error_page(error: VendgateError) -> str:
    footer = "No payment was made."
    if isinstance(error, MachineUnavailable):
        text = UNAVAILABLE_TEXT[error.reason]
        headline, data_state = error.machine_name, str(error.reason)
    elif isinstance(error, RateLimited):
        headline, data_state = error.machine_name or "Please slow down", "rate_limited"
        wait = f"Please wait {error.retry_after} seconds and try again."
        if error.machine_name is not None:
            text = f"This machine was scanned too many times just now. {wait}"
        else:
            # The status page of a purchase that may well be paid: say nothing about payment.
            text, footer = f"This page was loaded too many times just now. {wait}", ""
    else:
        text, headline, data_state = error.detail, error.title, "error"
    body = (
        f'<main id="status" data-state="{escape(data_state)}" data-final="true">'
        '<div class="badge" aria-hidden="true"></div>'
        f'<h1 id="headline">{escape(headline)}</h1><p class="big">{escape(text)}</p>'
        + (f'<p class="muted">{escape(footer)}</p>' if footer else "")
        + "</main>"
    )
    return page(headline, body)
