"""The flash screen (home): a card per drive bay, Flash per drive and Flash all.

A verdict stays on its card until the drive is pulled out: a line worker who
looks away must still see which drive failed. PASS and FAIL differ in colour,
icon and word, so nobody has to tell green from red.
"""

from __future__ import annotations

from nicegui import ui

from kiosk.flashlog import Status
from kiosk.library import Image
from kiosk.station import Bay, Station
from kiosk.ui import theme, units
from kiosk.ui.worker import blocking
from kiosk.versions import Version

PHASES = {"writing": "Writing", "verifying": "Verifying", "done": "Finishing"}


def bay_line(bay: Bay) -> str:
    """`Samsung T7 · 500.1 GB · serial S6WB…` for the card and the question."""
    model = bay.model or bay.drive.model or bay.drive.name
    serial = bay.serial or "unknown"
    return f"{model} · {units.human_size(bay.drive.size)} · serial {serial}"


def too_small(bay: Bay, image: Image | None) -> str:
    """Why the drive cannot take the chosen image, empty when it can."""
    if image is None or bay.drive.size >= image.size:
        return ""
    return (
        f"Too small for {image.version}: it holds "
        f"{units.human_size(bay.drive.size)}, the image needs "
        f"{units.human_size(image.size)}. Use a larger drive."
    )


def card_state(bay: Bay, image: Image | None) -> tuple[object, ...]:
    """What decides a card's layout; progress alone only updates figures."""
    outcome = bay.outcome
    return (
        bay.device,
        bay.serial,
        bay.running,
        bay.refusal,
        too_small(bay, image),
        outcome.status if outcome else None,
        outcome.error if outcome else None,
    )


class FlashScreen:
    """The home screen of one browser tab."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.images: list[Image] = []
        self.bars: dict[str, tuple[ui.linear_progress, ui.label]] = {}
        self.shown: dict[str, tuple[object, ...]] = {}
        self.slots: dict[str, ui.element] = {}
        self.local = station.updates.status().local

        ui.label("Flash").classes("text-h4")
        with ui.row().classes("w-full items-center gap-4"):
            self.choice = ui.select({}, label="Image to write").classes("min-w-[320px]")
            self.note = ui.label().classes("kiosk-muted")
            ui.space()
            ui.button("Flash all", icon="bolt", on_click=self.ask_all).classes(
                theme.PRIMARY
            ).props("data-testid=flash-all").mark("flash-all")
        self.notice = ui.label().classes("text-h6 kiosk-muted")
        self.cards = ui.row().classes("w-full gap-4 items-stretch")
        with ui.dialog() as self.dialog, ui.card().classes("q-pa-lg min-w-[520px]"):
            self.question = ui.column().classes("gap-2")
            with ui.row().classes("gap-4 q-mt-md"):
                ui.button("Cancel", on_click=self.dialog.close).props("outline")
                self.go = ui.button("Flash", icon="bolt", color="negative").classes(
                    theme.PRIMARY
                )
                self.go.mark("confirm-flash")
        self.go.on_click(self.confirmed)
        self.planned: list[str] = []

        ui.timer(0.01, self.load_images, once=True)
        ui.timer(0.3, self.refresh)

    @property
    def version(self) -> Version | None:
        value = self.choice.value
        return Version.parse(value) if isinstance(value, str) and value else None

    @property
    def image(self) -> Image | None:
        version = self.version
        return next((i for i in self.images if i.version == version), None)

    def ready(self, bay: Bay) -> bool:
        """Idle, offered and large enough for the chosen image."""
        return (
            not bay.running
            and bay.outcome is None
            and not bay.refusal
            and not too_small(bay, self.image)
        )

    async def load_images(self) -> None:
        self.images = await blocking(self.station.library.images)
        options = {str(i.version): f"{i.version} — verified" for i in self.images}
        self.choice.set_options(options)
        if self.images:
            self.choice.value = str(self.images[0].version)
            self.note.text = ""
        else:
            self.note.text = "No image on this station yet; download one first."

    def ask(self, devices: list[str]) -> None:
        """Name every drive's serial and size before anything is erased."""
        version = self.version
        if version is None:
            ui.notify("Choose an image to write first.", type="warning")
            return
        bays = [b for b in map(self.station.bay, devices) if b and self.ready(b)]
        if not bays:
            ui.notify("No drive is ready to be flashed.", type="warning")
            return
        self.planned = [bay.device for bay in bays]
        self.question.clear()
        with self.question:
            ui.label(f"Write {version} to {len(bays)} drive(s)?").classes("text-h5")
            for bay in bays:
                ui.label(f"{bay.drive.slot}: {bay_line(bay)}").classes(
                    "text-weight-bold"
                )
            ui.label("Everything on these drives is erased.")
        self.go.text = f"Flash {len(bays)} drive(s)"
        self.dialog.open()

    def ask_all(self) -> None:
        self.ask([bay.device for bay in self.station.bays() if self.ready(bay)])

    def confirmed(self) -> None:
        self.dialog.close()
        version = self.version
        if version is None:
            return
        for device in self.planned:
            self.station.flash(device, version)

    async def refresh(self) -> None:
        local = self.station.updates.status().local
        if local != self.local:  # a download finished or an image was pruned
            self.local = local
            await self.load_images()
        bays = self.station.bays()
        self.place(bays)
        for bay in bays:
            widgets = self.bars.get(bay.device)
            if widgets is not None and bay.progress is not None:
                bar, figures = widgets
                progress = bay.progress
                share = units.percent(progress.done_bytes, progress.total_bytes)
                bar.value = share / 100
                figures.text = (
                    f"{PHASES[progress.phase]} · {share} % · "
                    f"{units.speed(progress.speed)} · "
                    f"{units.duration(progress.eta_seconds)} left"
                )
        self.notice.text = self.station.drive_error or (
            "" if bays else "Plug in a drive to flash it."
        )

    def place(self, bays: list[Bay]) -> None:
        """Redraw only the cards whose state changed; drop those of pulled drives."""
        present = {bay.device for bay in bays}
        for device in [d for d in self.slots if d not in present]:
            self.slots.pop(device).delete()
            self.shown.pop(device, None)
            self.bars.pop(device, None)
        image = self.image
        for bay in bays:
            state = card_state(bay, image)
            if self.shown.get(bay.device) == state:
                continue
            self.shown[bay.device] = state
            slot = self.slots.get(bay.device)
            if slot is None:
                with self.cards:
                    slot = self.slots[bay.device] = ui.element("div")
            slot.clear()
            self.bars.pop(bay.device, None)
            with slot:
                self.card(bay, image)

    def card(self, bay: Bay, image: Image | None) -> None:
        outcome = bay.outcome
        style = ""
        if outcome is not None:
            style = "kiosk-pass" if outcome.passed else "kiosk-fail"
        with (
            ui.card()
            .classes(f"w-[400px] q-pa-md {style}")
            .props(f"data-testid=bay data-device={bay.device}")
            .mark(f"bay:{bay.device}")
        ):
            ui.label(bay.drive.slot).classes("text-h5 text-weight-bold")
            ui.label(bay_line(bay))
            if bay.identity_error and outcome is None:
                ui.label(bay.identity_error).classes("text-negative")
            if bay.running:
                ui.label(f"Writing {bay.version} — do not remove").classes("text-h6")
                bar = ui.linear_progress(value=0, show_value=False, size="24px").props(
                    "instant-feedback"
                )
                figures = ui.label("Starting…").props("data-testid=phase")
                self.bars[bay.device] = (bar, figures)
                ui.button(
                    "Stop",
                    icon="stop",
                    color="negative",
                    on_click=lambda d=bay.device: self.station.cancel_flash(d),
                ).props("outline").mark(f"stop:{bay.device}")
            elif outcome is not None:
                verdict(outcome.passed, outcome.status, outcome.error)
                ui.label("Safe to remove").classes("text-h6").props("data-testid=safe")
            elif reason := bay.refusal or too_small(bay, image):
                with ui.row().classes("items-center gap-2 no-wrap"):
                    ui.icon("block", size="32px")
                    ui.label("Not offered").classes("text-h6")
                ui.label(reason).classes("text-weight-bold").props(
                    "data-testid=refusal"
                )
            else:
                ui.button(
                    "Flash",
                    icon="bolt",
                    on_click=lambda d=bay.device: self.ask([d]),
                ).classes(theme.PRIMARY + " w-full").mark(f"flash:{bay.device}")


def verdict(passed: bool, status: str, reason: str) -> None:
    """The large PASS or FAIL: colour, a tick or cross, and words."""
    with ui.row().classes("items-center gap-3 no-wrap"):
        ui.icon("check_circle" if passed else "cancel", size="56px")
        if passed:
            ui.label("PASS").classes("kiosk-verdict").props("data-testid=verdict")
        else:
            word = "CANCELLED" if status == Status.CANCELLED else "FAIL"
            ui.label(word).classes("kiosk-verdict").props("data-testid=verdict")
    if passed:
        ui.label("Written and verified by reading it back.")
    else:
        ui.label(reason).classes("text-weight-bold").props("data-testid=reason")


def render(station: Station) -> None:
    FlashScreen(station)
