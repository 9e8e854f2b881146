"""A person at the console, for tests: an httpx client that keeps the session cookie, reads the pages'
text and forms, and posts forms the way a browser does (their CSRF token, an ``Origin`` header).

::

    person = ConsolePerson(client, base_url)
    person.sign_in(TOKEN)
    page = person.get("/console/prompts/greeter")
    assert "stable v1" in page.text
    person.submit(page, "/console/prompts/greeter/rollout/advance", reason="looks fine")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

__all__ = ["ConsolePerson", "Form", "Page", "people_file"]


@dataclass
class Form:
    """One form of a page: where it posts and the fields it carries (hidden ones with their values)."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.main: list[str] = []
        self._skip = 0
        self._in_main = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style", "title"):
            self._skip += 1
        elif tag == "main":
            self._in_main = True
        elif tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in a:
            self.forms[-1].fields.setdefault(a["name"], a.get("value", ""))
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title") and self._skip:
            self._skip -= 1
        elif tag == "main":
            self._in_main = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
            if self._in_main:
                self.main.append(data)


@dataclass
class Page:
    """A page as a person reads it: status, visible text (whitespace collapsed; ``main``: the
    page's own, without the header), forms and links."""

    response: httpx.Response
    text: str
    main: str
    forms: list[Form]
    links: list[str]

    @classmethod
    def of(cls, response: httpx.Response) -> Page:
        reader = _Reader()
        reader.feed(response.text)
        text = re.sub(r"\s+", " ", " ".join(reader.text)).strip()
        main = re.sub(r"\s+", " ", " ".join(reader.main)).strip()
        return cls(response=response, text=text, main=main, forms=reader.forms, links=reader.links)

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def html(self) -> str:
        return self.response.text

    def form(self, action: str) -> Form:
        """The form posting to ``action`` (its path, whatever its query)."""
        for form in self.forms:
            if form.action.split("?")[0] == action:
                return form
        raise AssertionError(f"no form posts to {action}; forms: {[f.action for f in self.forms]}")


class ConsolePerson:
    """Someone using the console at ``base_url`` through ``client`` (which keeps cookies)."""

    def __init__(self, client: httpx.Client, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.origin = self.base_url

    def get(self, path: str, **params: Any) -> Page:
        return Page.of(self.client.get(self.base_url + path, params=params or None, follow_redirects=True))

    def follow(self, href: str) -> Page:
        """GET a link of a page (a path with its query)."""
        return Page.of(self.client.get(self.base_url + href, follow_redirects=True))

    def post(self, path: str, data: dict[str, str], *, origin: str | None = "same") -> Page:
        """Post ``data`` as a form to ``path``, following the redirect; ``origin`` the ``Origin``
        header (``same``: the console's own; None: none)."""
        headers = {}
        if origin is not None:
            headers["Origin"] = self.origin if origin == "same" else origin
        response = self.client.post(self.base_url + path, data=data, headers=headers, follow_redirects=False)
        if response.is_redirect:
            location = response.headers["location"]
            target = location if location.startswith("http") else self.base_url + location
            return Page.of(self.client.get(target, follow_redirects=True))
        return Page.of(response)

    def submit(self, page: Page, action: str, **values: str) -> Page:
        """Fill in the form of ``page`` posting to ``action`` with ``values`` and post it."""
        form = page.form(action)
        return self.post(form.action, {**form.fields, **values})

    def sign_in(self, token: str) -> Page:
        """Sign in with ``token`` through the sign-in form; the page reached."""
        form_page = self.get("/console/sign-in")
        return self.submit(form_page, "/console/sign-in", token=token)

    def sign_out(self) -> Page:
        page = self.get("/console/")
        return self.submit(page, "/console/sign-out")


def people_file(folder: Any, people: list[dict[str, Any]]) -> Any:
    """A credentials file of ``people`` (each: principal, token, roles, environments?) in ``folder``."""
    import hashlib

    import yaml

    entries = []
    for person in people:
        entry = {
            "principal": person["principal"],
            "token_sha256": hashlib.sha256(person["token"].encode()).hexdigest(),
            "roles": list(person["roles"]),
        }
        if "environments" in person:
            entry["environments"] = list(person["environments"])
        entries.append(entry)
    path = folder / "credentials.yaml"
    path.write_text(yaml.safe_dump(entries), encoding="utf-8")
    return path
