"""Radio buttons and check boxes whose state reads without colour: Textual draws the same mark
on and off and tells them apart by colour alone, which a 16-colour link or a colour-blind admin
may not see. Here the mark is there only when the choice is on."""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class MarkedRadioButton(RadioButton):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 (Textual's name for the mark)
        return "●" if self.value else " "


class MarkedCheckbox(Checkbox):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802
        return "X" if self.value else " "
