"""The built-in simulated home: the sample's devices, as tools, with a state that can be read and reset.

    home = SimulatedHome()
    tools = home.tools()                  # set_light, get_lights, washing machine, doors, weather, time
    home.snapshot()                       # {"lights": {"kitchen": {"on": false, ...}}, "doors": {...}, ...}
    home.reset()                          # back to the state every demo and test starts from

Lights in named rooms (on/off, brightness, colour), a washing machine, door locks (unlocking needs the user's
confirmation), the weather and the time. Everything is deterministic: the weather is a fixed table, the clock can
be given. One home per gateway, shared by every session: it stands for one household.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .tools import Tool, ToolFailure, ToolSpec

__all__ = ["ROOMS", "SimulatedHome"]

ROOMS = ("kitchen", "living room", "bedroom", "bathroom", "hallway", "office", "garage")
DOORS = ("front door", "back door", "garage door")
COLOURS = ("white", "warm white", "red", "orange", "yellow", "green", "blue", "purple", "pink")
PROGRAMS = ("cotton", "synthetics", "wool", "delicates", "quick")
PROGRAM_MINUTES = {"cotton": 150, "synthetics": 95, "wool": 40, "delicates": 50, "quick": 30}
# A fixed table, so that answers about the weather are the same in every run.
WEATHER = {
    "amsterdam": ("light rain", 11),
    "berlin": ("cloudy", 9),
    "london": ("overcast", 12),
    "new york": ("sunny", 18),
    "paris": ("partly cloudy", 14),
    "seattle": ("rain", 10),
    "tokyo": ("clear", 16),
}
DEFAULT_WEATHER = ("partly cloudy", 15)


def _initial() -> dict[str, Any]:
    return {
        "lights": {room: {"on": False, "brightness": 100, "color": "warm white"} for room in ROOMS},
        "doors": {door: {"locked": True} for door in DOORS},
        "washing_machine": {"running": False, "program": None, "temperature": None, "minutes_left": 0},
    }


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


ROOM = {"type": "string", "enum": [*ROOMS, "all"], "description": "the room, or all rooms"}
DOOR = {"type": "string", "enum": list(DOORS)}


@dataclass(frozen=True, slots=True)
class _HomeTool:
    spec: ToolSpec
    action: Callable[[dict[str, Any]], Any]

    async def run(self, arguments: dict[str, Any]) -> Any:
        return self.action(arguments)


class SimulatedHome:
    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._state = _initial()

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._state)

    def reset(self) -> dict[str, Any]:
        self._state = _initial()
        return self.snapshot()

    def tools(self) -> list[Tool]:
        def spec(name: str, description: str, parameters: dict[str, Any], confirm: bool = False) -> ToolSpec:
            return ToolSpec(name, description, parameters, source="home", confirm=confirm, timeout_s=5.0)

        light = {
            "room": ROOM,
            "on": {"type": "boolean", "description": "true to switch on, false to switch off"},
            "brightness": {"type": "integer", "minimum": 1, "maximum": 100, "description": "percent"},
            "color": {"type": "string", "enum": list(COLOURS)},
        }
        return [
            _HomeTool(
                spec(
                    "set_light",
                    "Switch a room's lights on or off, dim them or change their colour.",
                    _object(light, ("room",)),
                ),
                self._set_light,
            ),
            _HomeTool(
                spec("get_lights", "The lights' state, of one room or all.", _object({"room": ROOM})), self._get_lights
            ),
            _HomeTool(
                spec(
                    "set_washing_machine",
                    "Start or stop the washing machine.",
                    _object(
                        {
                            "action": {"type": "string", "enum": ["start", "stop"]},
                            "program": {"type": "string", "enum": list(PROGRAMS)},
                            "temperature": {"type": "integer", "enum": [20, 30, 40, 60, 90]},
                        },
                        ("action",),
                    ),
                ),
                self._set_washer,
            ),
            _HomeTool(
                spec("get_washing_machine", "The washing machine's state.", _object({})),
                lambda _: dict(self._state["washing_machine"]),
            ),
            _HomeTool(
                spec("lock_door", "Lock a door.", _object({"door": DOOR}, ("door",))),
                lambda a: self._lock(a["door"], True),
            ),
            _HomeTool(
                spec(
                    "unlock_door",
                    "Unlock a door. Needs the user's confirmation.",
                    _object({"door": DOOR}, ("door",)),
                    confirm=True,
                ),
                lambda a: self._lock(a["door"], False),
            ),
            _HomeTool(
                spec("get_doors", "Which doors are locked.", _object({})), lambda _: copy.deepcopy(self._state["doors"])
            ),
            _HomeTool(
                spec(
                    "get_weather",
                    "The current weather in a city.",
                    _object(
                        {
                            "location": {"type": "string", "minLength": 1, "maxLength": 100},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        },
                        ("location",),
                    ),
                ),
                self._weather,
            ),
            _HomeTool(
                spec(
                    "get_time",
                    "The current date and time, in a time zone (IANA name, e.g. Europe/Paris) or UTC.",
                    _object({"timezone": {"type": "string", "maxLength": 64}}),
                ),
                self._time,
            ),
        ]

    def _rooms(self, room: str) -> list[str]:
        return list(ROOMS) if room == "all" else [room]

    def _set_light(self, arguments: dict[str, Any]) -> dict[str, Any]:
        changes = {k: arguments[k] for k in ("on", "brightness", "color") if k in arguments}
        if not changes:
            raise ToolFailure("Say what to change: on, brightness or color.")
        if ("brightness" in changes or "color" in changes) and "on" not in changes:
            changes["on"] = True  # dimming or colouring a light that is off means turning it on
        for room in self._rooms(arguments["room"]):
            self._state["lights"][room].update(changes)
        return self._get_lights({"room": arguments["room"]})

    def _get_lights(self, arguments: dict[str, Any]) -> dict[str, Any]:
        rooms = self._rooms(arguments.get("room", "all"))
        return {room: dict(self._state["lights"][room]) for room in rooms}

    def _set_washer(self, arguments: dict[str, Any]) -> dict[str, Any]:
        washer = self._state["washing_machine"]
        if arguments["action"] == "stop":
            if not washer["running"]:
                raise ToolFailure("The washing machine is not running.")
            washer.update(running=False, program=None, temperature=None, minutes_left=0)
        else:
            if washer["running"]:
                raise ToolFailure(f"The washing machine is already running ({washer['program']}).")
            program = arguments.get("program", "cotton")
            washer.update(
                running=True,
                program=program,
                temperature=arguments.get("temperature", 40),
                minutes_left=PROGRAM_MINUTES[program],
            )
        return dict(washer)

    def _lock(self, door: str, locked: bool) -> dict[str, Any]:
        self._state["doors"][door]["locked"] = locked
        return {door: {"locked": locked}}

    def _weather(self, arguments: dict[str, Any]) -> dict[str, Any]:
        place = " ".join(str(arguments["location"]).split()).lower()
        summary, celsius = WEATHER.get(place, DEFAULT_WEATHER)
        fahrenheit = arguments.get("unit") == "fahrenheit"
        return {
            "location": arguments["location"],
            "summary": summary,
            "temperature": round(celsius * 9 / 5 + 32) if fahrenheit else celsius,
            "unit": "fahrenheit" if fahrenheit else "celsius",
        }

    def _time(self, arguments: dict[str, Any]) -> dict[str, Any]:
        name = arguments.get("timezone") or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolFailure(f"Unknown time zone {name[:64]!r}; use an IANA name such as Europe/Paris.") from None
        now = self._clock().astimezone(zone)
        return {
            "timezone": name,
            "time": now.strftime("%H:%M"),
            "date": now.date().isoformat(),
            "weekday": now.strftime("%A"),
        }
