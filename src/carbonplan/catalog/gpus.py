"""Built-in GPU facts: board power, relative speed, memory, MIG profiles and embodied carbon.

Sources are named in docs/catalog.md. Power: NVIDIA datasheets (TDP / max board power) and, for
idle, the Cloud Carbon Footprint coefficients and published idle measurements. Speed: relative
training throughput against the reference GPU (A100-80GB SXM = 1.0), rounded from MLPerf
Training results and vendor comparisons; it is a default for `--hours` scaling, and a site can
override it. MIG profiles: NVIDIA's MIG User Guide. Embodied carbon: scaled from the 150 kgCO2e per
A100 used by Luccioni et al. (2022) for BLOOM, by board size and memory; uncertain by about +/-50%.
Plain data: imports nothing from carbonplan.
"""

from __future__ import annotations

REFERENCE_GPU = "a100-80gb"
DEFAULT_LIFETIME_YEARS = 5.0

# id: (display name, family, memory GB, idle W, max W, speed vs reference, embodied kgCO2e)
GPUS: dict[str, tuple[str, str, int, float, float, float, float]] = {
    "v100":      ("NVIDIA V100 SXM2",        "v100", 16,  40.0, 300.0, 0.40, 120.0),
    "t4":        ("NVIDIA T4",               "t4",   16,   9.0,  70.0, 0.12,  50.0),
    "a10g":      ("NVIDIA A10G",             "a10g", 24,  20.0, 300.0, 0.30,  80.0),
    "l4":        ("NVIDIA L4",               "l4",   24,  16.0,  72.0, 0.25,  50.0),
    "l40s":      ("NVIDIA L40S",             "l40s", 48,  35.0, 350.0, 0.80, 120.0),
    "a100-40gb": ("NVIDIA A100 40GB SXM4",   "a100", 40,  50.0, 400.0, 0.95, 140.0),
    "a100-80gb": ("NVIDIA A100 80GB SXM4",   "a100", 80,  55.0, 400.0, 1.00, 150.0),
    "h100-sxm":  ("NVIDIA H100 80GB SXM5",   "h100", 80,  70.0, 700.0, 2.20, 170.0),
    "h100-pcie": ("NVIDIA H100 80GB PCIe",   "h100", 80,  50.0, 350.0, 1.60, 160.0),
    "h200":      ("NVIDIA H200 141GB SXM",   "h200", 141, 75.0, 700.0, 2.60, 190.0),
}

# MIG profiles per GPU: name -> (compute slices of 7, memory GB, max instances per GPU).
# "+me" (media extension) variants are left out: they use the same slices as their base profile.
_A100_80 = {"1g.10gb": (1, 10, 7), "1g.20gb": (1, 20, 4), "2g.20gb": (2, 20, 3),
            "3g.40gb": (3, 40, 2), "4g.40gb": (4, 40, 1), "7g.80gb": (7, 80, 1)}
MIG_PROFILES: dict[str, dict[str, tuple[int, int, int]]] = {
    "a100-40gb": {"1g.5gb": (1, 5, 7), "1g.10gb": (1, 10, 4), "2g.10gb": (2, 10, 3),
                  "3g.20gb": (3, 20, 2), "4g.20gb": (4, 20, 1), "7g.40gb": (7, 40, 1)},
    "a100-80gb": _A100_80,
    "h100-sxm": dict(_A100_80),
    "h100-pcie": dict(_A100_80),
    "h200": {"1g.18gb": (1, 18, 7), "1g.35gb": (1, 35, 4), "2g.35gb": (2, 35, 3),
             "3g.71gb": (3, 71, 2), "4g.71gb": (4, 71, 1), "7g.141gb": (7, 141, 1)},
}
