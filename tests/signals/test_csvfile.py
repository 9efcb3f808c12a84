"""CSV files: Electricity Maps' data-portal export and the simple format, a file or a folder."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from carbonplan.signals.errors import ProviderRejected
from carbonplan.signals.providers.csvfile import CsvFile
from carbonplan.signals.series import Flag

from .conftest import carbon

T = datetime(2021, 1, 1, tzinfo=UTC)
EM_HEADER = ("Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
             "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
             "Data Source,Data Estimated,Data Estimation Method\n")
SHARED = Path("/work/shared/data/electricitymaps-hourly-2021-2023/US-CAL-CISO_2021_hourly.csv")


def em_rows(n: int, zone: str = "US-CAL-CISO", start: datetime = T) -> str:
    out = []
    for i in range(n):
        t = (start + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S")
        est = "true" if i == 1 else "false"
        out.append(f"{t},USA,California Independent System Operator,{zone},{200 + i},{300 + i},"
                   f"44.75,33.74,caiso.com,{est},{'TIME_SLICER_AVERAGE' if i == 1 else ''}\n")
    return "".join(out)


def provider(path, clock, **csv) -> CsvFile:
    return CsvFile(carbon(csv={"path": str(path), **csv}), clock=clock)


def test_electricitymaps_export_lifecycle_and_direct(tmp_path, clock) -> None:
    f = tmp_path / "cal.csv"
    f.write_text(EM_HEADER + em_rows(4), encoding="utf-8")
    s = provider(f, clock).history("US-CAL-CISO", T, T + timedelta(hours=4))
    assert s.values.tolist() == [300, 301, 302, 303] and s.step_s == 3600
    assert s.flags.tolist() == [Flag.MEASUREMENT, Flag.ESTIMATE, Flag.MEASUREMENT,
                                Flag.MEASUREMENT]
    d = provider(f, clock, emission_factor_type="direct").history("US-CAL-CISO", T,
                                                                   T + timedelta(hours=4))
    assert d.values.tolist() == [200, 201, 202, 203]


def test_simple_format_in_a_directory_with_several_zones(tmp_path, clock) -> None:
    (tmp_path / "a.csv").write_text("datetime,zone,gco2_per_kwh\n"
                                    "2021-01-01T00:00Z,DE,400\n2021-01-01T01:00Z,DE,410\n"
                                    "2021-01-01T00:00Z,FR,50\n")
    (tmp_path / "b.csv").write_text("datetime,zone,gco2_per_kwh\n"
                                    "2021-01-01 02:00:00+00:00,DE,420\n"
                                    "2021-01-01T03:00,DE,oops\n2021-01-01T04:00,DE,440\n")
    (tmp_path / "notes.txt").write_text("ignored")
    p = provider(tmp_path, clock)
    s = p.forecast("DE", T, T + timedelta(hours=5))
    assert s.values[:3].tolist() == [400, 410, 420] and np.isnan(s.values[3])
    assert s.values[4] == 440 and s.dropped == 1 and s.kind == "forecast"
    assert p.forecast("FR", T, T + timedelta(hours=1)).values.tolist() == [50]
    with pytest.raises(ProviderRejected, match="zones there: DE, FR"):
        p.check_zone("PL")


def test_a_changed_file_is_read_again(tmp_path, clock) -> None:
    f = tmp_path / "x.csv"
    f.write_text("datetime,zone,gco2_per_kwh\n2021-01-01T00:00Z,DE,400\n")
    p = provider(f, clock)
    assert p.history("DE", T, T + timedelta(hours=1)).values.tolist() == [400]
    f.write_text("datetime,zone,gco2_per_kwh\n2021-01-01T00:00Z,DE,123.5\n")
    assert p.history("DE", T, T + timedelta(hours=1)).values.tolist() == [123.5]


@pytest.mark.parametrize("content,match", [
    ("time,value\n1,2\n", "unrecognized header"),
    (None, "no such file"),
])
def test_bad_paths_and_headers(tmp_path, clock, content, match) -> None:
    f = tmp_path / "bad.csv"
    if content is not None:
        f.write_text(content)
    with pytest.raises(ProviderRejected, match=match) as e:
        provider(f, clock).check_zone("DE")
    assert e.value.field == "carbon.csv.path"


def test_format_forced_to_electricitymaps_needs_its_columns(tmp_path, clock) -> None:
    f = tmp_path / "s.csv"
    f.write_text("datetime,zone,gco2_per_kwh\n2021-01-01T00:00Z,DE,400\n")
    with pytest.raises(ProviderRejected, match="not an Electricity Maps export"):
        provider(f, clock, format="electricitymaps").check_zone("DE")


@pytest.mark.skipif(not SHARED.is_file(), reason="shared data directory absent")
def test_the_real_data_portal_export_reads_whole(clock) -> None:
    p = provider(SHARED, clock)
    year = p.history("US-CAL-CISO", T, T + timedelta(days=365))
    assert year.n == 8760 and year.dropped == 0 and not np.isnan(year.values).any()
    assert 250 < np.mean(year.values) < 300  # lifecycle, 2021 mean is about 274
