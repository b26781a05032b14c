"""A small, tolerant HTML tree built with the standard library's parser (no regular expressions on HTML).

Drupal 7 pages are close to XHTML, but the reader must not depend on attribute order or on every tag being
closed: an end tag closes the nearest open element of the same name, stray end tags are ignored, void
elements (input, br, meta...) never take children.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import overload
from html.parser import HTMLParser

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# Elements a browser closes implicitly when a sibling starts (enough for Drupal's lists and tables).
_AUTO_CLOSE = {"li": {"li"}, "option": {"option"}, "tr": {"tr"}, "td": {"td", "th"}, "th": {"td", "th"}, "p": {"p"}}


class Element:
    __slots__ = ("tag", "attrs", "children", "parent")

    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None = None):
        self.tag = tag
        self.attrs = attrs
        self.children: list[Element | str] = []
        self.parent = parent

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    @property
    def id(self) -> str | None:
        return self.attrs.get("id")

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def iter(self) -> Iterator[Element]:
        """This element and every element below it, in document order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed([c for c in node.children if isinstance(c, Element)]))

    def find_all(self, tag: str | None = None, *, id: str | None = None, cls: str | None = None,
                 **attrs: str) -> list[Element]:
        out = []
        for el in self.iter():
            if tag is not None and el.tag != tag:
                continue
            if id is not None and el.attrs.get("id") != id:
                continue
            if cls is not None and cls not in el.classes:
                continue
            if any(el.attrs.get(k) != v for k, v in attrs.items()):
                continue
            out.append(el)
        return out

    def find(self, tag: str | None = None, **kw: str) -> Element | None:
        found = self.find_all(tag, **kw)
        return found[0] if found else None

    def text(self, *, skip_cls: str | None = None) -> str:
        """The text below this element, whitespace collapsed; elements with class `skip_cls` left out."""
        parts: list[str] = []

        def walk(node: Element) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif not (skip_cls and skip_cls in child.classes) and child.tag not in ("script", "style"):
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs!r}>"


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        closes = _AUTO_CLOSE.get(tag)
        if closes and self.stack[-1].tag in closes:
            self.stack.pop()
        el = Element(tag, {k: (v if v is not None else k) for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(el)
        if tag not in _VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: (v if v is not None else k) for k, v in attrs}, self.stack[-1])
        self.stack[-1].children.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_html(text: str) -> Element:
    builder = _Builder()
    builder.feed(text)
    builder.close()
    return builder.root


class Form:
    """A form as a browser would submit it: hidden fields, the submit button (by id edit-submit)."""

    def __init__(self, el: Element):
        self.el = el
        self.id = el.get("id")
        self.action = el.get("action")
        self.hidden = {name: i.get("value", "") for i in el.find_all("input", type="hidden") if (name := i.get("name"))}
        self.submit = el.find("input", id="edit-submit")

    def values(self) -> dict[str, str]:
        """What a browser sends for the form's own controls as they stand (hidden and text inputs, checked
        boxes, selected options), without any submit button or file."""
        out: dict[str, str] = {}
        for el in self.el.iter():
            name = el.get("name")
            if not name or "disabled" in el.attrs:
                continue
            kind = (el.get("type") or "text").lower()
            if el.tag == "input" and kind in ("hidden", "text", "email", "number", "password") or el.tag == "textarea":
                out[name] = el.get("value", "") if el.tag == "input" else el.text()
            elif el.tag == "input" and kind in ("checkbox", "radio") and "checked" in el.attrs:
                out[name] = el.get("value", "on")
            elif el.tag == "select":
                options = el.find_all("option")
                chosen = [o for o in options if "selected" in o.attrs] or options[:1]
                if chosen:
                    out[name] = chosen[0].get("value", chosen[0].text())
        return out

    def button(self, value: str) -> Element | None:
        """The submit button labelled `value` (Drupal forms may have several, all named op)."""
        for el in self.el.find_all("input", type="submit"):
            if el.get("value") == value:
                return el
        return None

    @property
    def form_id(self) -> str | None:
        return self.hidden.get("form_id")

    @property
    def button_label(self) -> str | None:
        return self.submit.get("value") if self.submit is not None else None

    @property
    def button_disabled(self) -> bool:
        return self.submit is not None and "disabled" in self.submit.attrs


class Page:
    """One Drupal page: its title, forms, status/warning/error messages and whether it shows a login form."""

    def __init__(self, text: str, *, status: int = 200, url: str = ""):
        self.status = status
        self.url = url
        self.root = parse_html(text)

    @property
    def title(self) -> str:
        h1 = self.root.find("h1", id="page-title")
        if h1 is not None:
            return h1.text()
        t = self.root.find("title")
        return t.text() if t is not None else ""

    def form(self, form_id: str) -> Form | None:
        """The form whose hidden form_id is `form_id` (Drupal's own id, e.g. feeds_import_form)."""
        for el in self.root.find_all("form"):
            f = Form(el)
            if f.form_id == form_id:
                return f
        return None

    def messages(self) -> list[tuple[str, str]]:
        """(kind, text) for each Drupal message: kind is status, warning or error."""
        out = []
        for box in self.root.find_all("div", cls="messages"):
            kind = next((k for k in ("error", "warning", "status") if k in box.classes), "status")
            items = box.find_all("li")
            texts = [li.text() for li in items] if items else [box.text(skip_cls="element-invisible")]
            out += [(kind, t) for t in texts if t]
        return out
