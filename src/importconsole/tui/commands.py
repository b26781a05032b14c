"""The command palette lists every action: the keys of the screen in front plus every place to
go, so nothing is reachable only by a key the admin has to remember."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


# Actions of the whole console that no key of every screen carries: found from any screen (the
# README promises every action in ctrl+p; from the Monitor "submit" found nothing).
APP_ACTIONS = [
    ("Submit the open file (s on Preview and Findings)", "submit", "Submit the file open in the preview"),
    ("Course for the open file (o on Preview and Findings)", "pick_course",
     "Pick the course the open file goes to (it belongs to that file)"),
]


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        seen: set[tuple[str, str]] = set()
        found: list[tuple[str, str, object]] = []
        movement: list[tuple[str, str, object]] = []  # the focused widget's cursor keys: listed last
        for _key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in ("command_palette",) or not active.enabled:
                continue
            marker = (binding.description, binding.action)
            if marker in seen:
                continue
            seen.add(marker)
            label = f"{binding.description} ({binding.key_display or self.app.get_key_display(binding)})"
            run = partial(self.app.run_action, binding.action, active.node)
            own = active.node is self.screen or active.node is self.app
            (found if own else movement).append((label, binding.tooltip or binding.description, run))
        have = {action.removeprefix("app.") for _, action in seen}
        for label, action, help_text in APP_ACTIONS:
            if action not in have:
                found.append((label, help_text, partial(self.app.run_action, action, self.app)))
        return found + movement

    async def discover(self) -> Hits:
        for label, help_text, run in self._commands():
            yield DiscoveryHit(label, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, help_text, run in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), run, help=help_text)
