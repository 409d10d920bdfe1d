"""The HTML of the sign-in pages (/login, /setup, /invite, /logout): plain forms, no script, in
the app's colours (static/signin.css). Every value shown is HTML-escaped here; the routes send
CSP, which forbids any script on these pages and lets forms post only to this site."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def _e(value) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | email | password | hidden
    value: str = ""
    autocomplete: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Form:
    title: str
    lead: str
    action: str
    button: str
    csrf: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    error: str = ""
    note: str = ""  # a line under the form (e.g. how to get an account)
    notice: str = ""  # good news above the form (e.g. "You are signed out.")


def page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{_e(title)} · Plinth</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/signin.css">
</head>
<body>
<main class="card">
<div class="brand"><span class="brand-mark">▲</span> Plinth<span class="brand-tag">3D &amp; AR for your products</span></div>
{body}
</main>
</body>
</html>
"""


def _field(f: Field) -> str:
    if f.kind == "hidden":
        return f'<input type="hidden" name="{_e(f.name)}" value="{_e(f.value)}">'
    auto = f' autocomplete="{_e(f.autocomplete)}"' if f.autocomplete else ""
    value = f' value="{_e(f.value)}"' if f.value and f.kind != "password" else ""
    ident = f"f-{_e(f.name)}"
    hint = f'<span class="hint" id="{ident}-hint">{_e(f.hint)}</span>' if f.hint else ""
    described = f' aria-describedby="{ident}-hint"' if f.hint else ""
    return (f'<div class="field"><label for="{ident}">{_e(f.label)}</label>'
            f'<input id="{ident}" type="{_e(f.kind)}" name="{_e(f.name)}"{value}{auto}{described} '
            f'{"required " if f.kind != "text" else ""}maxlength="1024">{hint}</div>')


def form(f: Form) -> str:
    error = f'<p class="error" role="alert">{_e(f.error)}</p>' if f.error else ""
    error += f'<p class="notice" role="status">{_e(f.notice)}</p>' if f.notice else ""
    note = f'<p class="note">{_e(f.note)}</p>' if f.note else ""
    fields = "\n".join(_field(x) for x in f.fields)
    return page(f.title, f"""<h1>{_e(f.title)}</h1>
<p class="lead">{_e(f.lead)}</p>
{error}
<form method="post" action="{_e(f.action)}">
<input type="hidden" name="csrf" value="{_e(f.csrf)}">
{fields}
<button type="submit">{_e(f.button)}</button>
</form>
{note}""")


def message(title: str, text: str, link: tuple[str, str] | None = None, code: str = "") -> str:
    """A page that only says something (and maybe offers one link, or one command to type)."""
    cmd = f'<pre class="cmd">{_e(code)}</pre>' if code else ""
    go = f'<p><a class="button" href="{_e(link[0])}">{_e(link[1])}</a></p>' if link else ""
    return page(title, f'<h1>{_e(title)}</h1>\n<p class="lead">{_e(text)}</p>\n{cmd}{go}')


def login(csrf: str, next_path: str, email: str = "", error: str = "", sso: tuple[tuple[str, str], ...] = (),
          notice: str = "") -> str:
    """`sso`: (link, label) of each single-sign-on provider, shown as "Sign in with <label>"."""
    sso_links = "".join(f'<p class="sso"><a class="button secondary" href="{_e(href)}">Sign in with {_e(label)}</a></p>'
                        for href, label in sso)
    html = form(Form(
        title="Sign in", lead="Sign in to make and manage your 3D models.", action="/login", button="Sign in",
        csrf=csrf, error=error, notice=notice, note="No account yet? Ask the shop owner who runs this Plinth to invite you.",
        fields=(Field("next", "", "hidden", next_path),
                Field("email", "E-mail", "email", email, "username"),
                Field("password", "Password", "password", autocomplete="current-password"))))
    return html.replace("</form>", f"</form>\n{sso_links}", 1) if sso_links else html


def setup(csrf: str, code: str, name: str = "", email: str = "", error: str = "") -> str:
    return form(Form(
        title="Welcome to Plinth", action="/setup", button="Create the owner account", csrf=csrf, error=error,
        lead="Create the owner account. The owner runs this server: you can invite other merchants later, "
             "each with their own models and shop.",
        fields=(Field("code", "", "hidden", code),
                Field("name", "Your name", "text", name, "name"),
                Field("email", "E-mail", "email", email, "username"),
                Field("password", "Password", "password", autocomplete="new-password",
                      hint="At least 10 characters. A few words in a row is easy to remember."),
                Field("password2", "Password again", "password", autocomplete="new-password"))))


def invite(csrf: str, code: str, email: str, name: str = "", error: str = "") -> str:
    return form(Form(
        title="Join Plinth", action="/invite", button="Create my account", csrf=csrf, error=error,
        lead=f"You were invited as {email}. Choose a password to start making 3D models of your products.",
        fields=(Field("code", "", "hidden", code),
                Field("name", "Your name", "text", name, "name"),
                Field("password", "Password", "password", autocomplete="new-password",
                      hint="At least 10 characters. A few words in a row is easy to remember."),
                Field("password2", "Password again", "password", autocomplete="new-password"))))


def logout(csrf: str) -> str:
    return form(Form(title="Sign out", lead="Sign out of Plinth on this browser?", action="/logout",
                     button="Sign out", csrf=csrf))
