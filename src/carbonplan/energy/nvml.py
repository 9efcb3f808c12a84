"""What a job's GPUs actually drew, read from NVML: the measured side of realized emissions.

The planner prices energy with a power model (idle to TDP at an assumed utilization); once a job
ran, the boards' own energy counters say what it drew. The local executor's runner reads them
around each attempt and the daemon then reports realized kgCO2e from the measurement instead of
the model.

- Whole GPUs only. NVML counts energy per board; a MIG instance has no counter of its own, and
  splitting the board's counter by slice share would bill one tenant for its neighbours' work, so
  a job on a MIG instance keeps the modelled figure.
- The counter (`nvmlDeviceGetTotalEnergyConsumption`, Volta and newer) is the default; on boards
  without it, power is sampled every second and integrated.
- A board's counter covers every process on it: the figure is the job's only when the job has its
  GPUs to itself, which is what CUDA_VISIBLE_DEVICES in the job's env (or a whole host) gives.
- Everything fails open: no NVML library, no GPU or a read error means no measurement, never a
  failed job. `pynvml` (nvidia-ml-py) is imported only here, on first use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from carbonplan.energy.formulas import joules_to_kwh


@dataclass(frozen=True)
class GpuReading:
    """One board's state now: what `carbonplan` shows and exports as metrics."""

    index: int
    uuid: str
    name: str
    power_w: float | None
    power_limit_w: float | None
    energy_j: float | None  # the board's counter since the driver loaded
    mig_enabled: bool | None


@dataclass
class Measurement:
    """Energy drawn by a set of boards over one interval."""

    joules: float
    seconds: float
    method: str  # "nvml-counter" | "nvml-power-samples"
    gpus: list[str] = field(default_factory=list)  # board UUIDs

    @property
    def kwh(self) -> float:
        return joules_to_kwh(self.joules)

    def as_json(self) -> dict[str, Any]:
        return {"joules": round(self.joules, 3), "seconds": round(self.seconds, 3),
                "method": self.method, "gpus": self.gpus}


class NvmlMeter:
    """An open NVML session. `open()` returns None wherever NVML cannot be used."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    @classmethod
    def open(cls) -> NvmlMeter | None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no package, no library, no driver: no meter
            return None
        meter = cls(pynvml)
        try:
            if pynvml.nvmlDeviceGetCount() == 0:
                meter.close()
                return None
        except Exception:
            meter.close()
            return None
        return meter

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass

    def __enter__(self) -> NvmlMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- boards --------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def _try(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            return None

    def readings(self) -> list[GpuReading]:
        n, out = self._nvml, []
        for i in range(self.count()):
            h = n.nvmlDeviceGetHandleByIndex(i)
            power = self._try(n.nvmlDeviceGetPowerUsage, h)
            limit = self._try(n.nvmlDeviceGetEnforcedPowerLimit, h)
            energy = self._try(n.nvmlDeviceGetTotalEnergyConsumption, h)
            mig = self._try(n.nvmlDeviceGetMigMode, h)
            out.append(GpuReading(
                index=i, uuid=_text(n.nvmlDeviceGetUUID(h)), name=_text(n.nvmlDeviceGetName(h)),
                power_w=power / 1000.0 if power is not None else None,
                power_limit_w=limit / 1000.0 if limit is not None else None,
                energy_j=energy / 1000.0 if energy is not None else None,
                mig_enabled=bool(mig[0]) if mig is not None else None))
        return out

    def boards(self, visible: str | None) -> list[int] | None:
        """Board indices a job sees, from its CUDA_VISIBLE_DEVICES (indices or GPU UUIDs).

        None when the job cannot be metered: it names a MIG instance or a board that does not
        exist. Unset means every board; an empty value means none.
        """
        count = self.count()
        if visible is None:
            return list(range(count))
        uuids = {self.uuid(i): i for i in range(count)}
        out: list[int] = []
        for item in (v.strip() for v in visible.split(",")):
            if not item:
                continue
            if item.isdigit() and int(item) < count:
                out.append(int(item))
            elif item in uuids:
                out.append(uuids[item])
            else:
                return None  # MIG-..., a short UUID prefix or a bad index: not metered
        return out

    def uuid(self, index: int) -> str:
        return _text(self._nvml.nvmlDeviceGetUUID(self._nvml.nvmlDeviceGetHandleByIndex(index)))

    def energy_j(self, boards: Sequence[int]) -> float | None:
        """Sum of the boards' energy counters in joules; None if any board has none."""
        return self._sum(boards, self._nvml.nvmlDeviceGetTotalEnergyConsumption)

    def power_w(self, boards: Sequence[int]) -> float | None:
        """The boards' power draw now, in watts; None if any cannot say."""
        return self._sum(boards, self._nvml.nvmlDeviceGetPowerUsage)

    def _sum(self, boards: Sequence[int], read_milli: Callable[[Any], Any]) -> float | None:
        total = 0.0
        for i in boards:
            v = self._try(read_milli, self._nvml.nvmlDeviceGetHandleByIndex(i))
            if v is None:
                return None
            total += v / 1000.0  # NVML reports mJ and mW
        return total

    def track(self, boards: Sequence[int], sample_s: float = 1.0) -> EnergyTracker:
        return EnergyTracker(self, list(boards), sample_s)


class EnergyTracker:
    """Energy of some boards from `start()` to `stop()`: counters, else integrated samples."""

    def __init__(self, meter: NvmlMeter, boards: list[int], sample_s: float) -> None:
        self.meter, self.boards, self.sample_s = meter, boards, sample_s
        self._t0 = time.monotonic()
        self._e0: float | None = None
        self._integral = PowerIntegral()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> EnergyTracker:
        self._t0 = time.monotonic()
        self._e0 = self.meter.energy_j(self.boards)
        if self._e0 is None:  # no counter on these boards: sample power instead
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while True:
            w = self.meter.power_w(self.boards)
            if w is not None:
                self._integral.add(time.monotonic(), w)
            if self._stop.wait(self.sample_s):
                return

    def stop(self) -> Measurement | None:
        seconds = time.monotonic() - self._t0
        uuids = [self.meter.uuid(i) for i in self.boards]
        if self._e0 is not None:
            e1 = self.meter.energy_j(self.boards)
            if e1 is None or e1 < self._e0:  # counter reset (driver reload): no figure
                return None
            return Measurement(e1 - self._e0, seconds, "nvml-counter", uuids)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        w = self.meter.power_w(self.boards)
        if w is not None:
            self._integral.add(time.monotonic(), w)
        if self._integral.samples < 2:
            return None
        return Measurement(self._integral.joules, seconds, "nvml-power-samples", uuids)


class PowerIntegral:
    """Trapezoidal integral of power samples (t in seconds, watts) into joules."""

    def __init__(self) -> None:
        self.joules = 0.0
        self.samples = 0
        self._last: tuple[float, float] | None = None

    def add(self, t: float, watts: float) -> None:
        if self._last is not None:
            t0, w0 = self._last
            self.joules += max(t - t0, 0.0) * (w0 + watts) / 2.0
        self._last = (t, watts)
        self.samples += 1


def _text(v: str | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else v
