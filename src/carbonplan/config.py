"""Site config: a TOML file -> validated settings and a `Site` of regions and pools.

Lookup order for the file: `--config`, $CARBONPLAN_CONFIG, ./carbonplan.toml,
<user config dir>/carbonplan/config.toml; with none, the embedded default (the built-in cloud
catalog, the offline carbon model, the local executor). Every table forbids unknown keys, so a
typo is an error that names the key and suggests the right one. Regions and pools named in the
file take their missing facts (zone, PUE, price, eviction rate) from the catalog.
"""

from __future__ import annotations

import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from carbonplan import catalog
from carbonplan.domain import Accelerator, Market, MigProfile, Pool, Region, Site, input_error
from carbonplan.errors import InputError, did_you_mean, unknown
from carbonplan.timeparse import parse_duration

CONFIG_ENV = "CARBONPLAN_CONFIG"
DB_ENV = "CARBONPLAN_DB"
_STRICT = ConfigDict(extra="forbid")


class SiteSection(BaseModel):
    model_config = _STRICT
    name: str = "carbonplan"
    carbon_price_usd_per_t: float = Field(default=100.0, ge=0)
    carbon_budget_t: float | None = Field(default=None, gt=0)
    home_region: str | None = None
    embodied_lifetime_years: float = Field(default=catalog.DEFAULT_LIFETIME_YEARS, gt=0)
    default_pool_capacity: int = Field(default=catalog.DEFAULT_POOL_CAPACITY, ge=1)


class PlannerSection(BaseModel):
    model_config = _STRICT
    slot: str = "1h"
    horizon: str = "7d"
    solver: str = "highs"
    time_limit_s: float = Field(default=30.0, gt=0)
    rel_gap: float = Field(default=0.01, gt=0, lt=1)
    freeze_window: str = "15m"
    learn_evictions: str | None = None  # window of spot history that updates eviction rates
    eviction_prior_h: float = Field(default=200.0, gt=0)

    @field_validator("slot", "horizon", "freeze_window", "learn_evictions")
    @classmethod
    def _duration(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        try:
            parse_duration(v, info.field_name or "", allow_zero=info.field_name == "freeze_window")
        except InputError as exc:
            raise ValueError(exc.reason) from None
        return v

    @property
    def slot_h(self) -> float:
        return parse_duration(self.slot, "planner.slot").total_seconds() / 3600.0

    @property
    def horizon_h(self) -> float:
        return parse_duration(self.horizon, "planner.horizon").total_seconds() / 3600.0

    @property
    def learn_evictions_h(self) -> float | None:
        if self.learn_evictions is None:
            return None
        return parse_duration(self.learn_evictions,
                              "planner.learn_evictions").total_seconds() / 3600.0


def _check_duration(v: str, field: str) -> str:
    try:
        parse_duration(v, field)
    except InputError as exc:
        raise ValueError(exc.reason) from None
    return v


class ElectricityMapsSettings(BaseModel):
    """[carbon.electricitymaps]: the key comes from the environment variable named here (or,
    discouraged, inline as `api_key`; it is never printed, logged or stored)."""

    model_config = _STRICT
    base_url: str = "https://api.electricitymaps.com/v3"
    api_key_env: str = "ELECTRICITYMAPS_API_KEY"
    api_key: SecretStr | None = None
    emission_factor_type: Literal["lifecycle", "direct"] = "lifecycle"
    disable_estimations: bool = False
    horizon_h: int = Field(default=72, ge=0, le=72)  # 0: the API's default horizon
    zones: dict[str, str] = Field(default_factory=dict)  # carbonplan zone -> EM zone key


class WattTimeSettings(BaseModel):
    """[carbon.watttime]: basic-auth login for a 30-minute bearer token. MOER is marginal."""

    model_config = _STRICT
    base_url: str = "https://api.watttime.org"
    username: str | None = None
    username_env: str = "WATTTIME_USERNAME"
    password_env: str = "WATTTIME_PASSWORD"
    password: SecretStr | None = None
    signal_type: Literal["co2_moer", "co2_aoer"] = "co2_moer"
    horizon_h: int = Field(default=72, ge=0, le=72)
    regions: dict[str, str] = Field(default_factory=lambda: {"US-CAL-CISO": "CAISO_NORTH"})


class UkGridSettings(BaseModel):
    """[carbon.ukgrid]: NESO Carbon Intensity API (no key); national, or one DNO region."""

    model_config = _STRICT
    base_url: str = "https://api.carbonintensity.org.uk"
    region_id: int | None = Field(default=None, ge=1, le=17)


class CsvSettings(BaseModel):
    """[carbon.csv]: Electricity Maps' hourly data-portal export or `datetime,zone,gco2_per_kwh`."""

    model_config = _STRICT
    path: str | None = None  # a file or a directory of *.csv
    format: Literal["auto", "electricitymaps", "simple"] = "auto"
    emission_factor_type: Literal["lifecycle", "direct"] = "lifecycle"


class CarbonSection(BaseModel):
    """[carbon]: which provider serves carbon intensity, and how it is fetched and cached."""

    model_config = _STRICT
    provider: str = "offline"
    zone_providers: dict[str, str] = Field(default_factory=dict)  # per-zone override
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=1.0, ge=0, le=60)
    max_retry_after_s: float = Field(default=60.0, ge=0, le=3600)
    cache_ttl: str = "15m"
    max_stale: str = "24h"
    blend_time: str = "12h"
    max_bad_fraction: float = Field(default=0.5, ge=0, lt=1)
    change_threshold: float = Field(default=0.10, gt=0)
    change_min_g_per_kwh: float = Field(default=10.0, ge=0)
    electricitymaps: ElectricityMapsSettings = Field(default_factory=ElectricityMapsSettings)
    watttime: WattTimeSettings = Field(default_factory=WattTimeSettings)
    ukgrid: UkGridSettings = Field(default_factory=UkGridSettings)
    csv: CsvSettings = Field(default_factory=CsvSettings)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        from carbonplan.signals.registry import PROVIDERS

        if v not in PROVIDERS.names():
            raise ValueError(unknown("provider", v, PROVIDERS.names()))
        return v

    @field_validator("zone_providers")
    @classmethod
    def _known_zone_providers(cls, v: dict[str, str]) -> dict[str, str]:
        from carbonplan.signals.registry import PROVIDERS

        zones = catalog.zone_ids()
        for zone, name in v.items():
            if zone not in zones:
                raise ValueError(unknown("grid zone", zone, zones))
            if name not in PROVIDERS.names():
                raise ValueError(f"{zone}: " + unknown("provider", name, PROVIDERS.names()))
        return v

    @field_validator("cache_ttl", "max_stale", "blend_time")
    @classmethod
    def _duration(cls, v: str, info: ValidationInfo) -> str:
        return _check_duration(v, info.field_name or "")

    def seconds(self, key: str) -> float:
        """A duration key (cache_ttl, max_stale, blend_time) in seconds."""
        return parse_duration(getattr(self, key), f"carbon.{key}").total_seconds()


class StoreSection(BaseModel):
    model_config = _STRICT
    url: str | None = None


class LocalExecutorSection(BaseModel):
    model_config = _STRICT
    run_dir: str | None = None  # default: beside the SQLite store, else the user data dir


class SlurmClusterEntry(BaseModel):
    """One Slurm cluster, reached through its own slurm.conf (passed as SLURM_CONF)."""

    model_config = _STRICT
    slurm_conf: str
    accounting: bool = False    # sacct works (slurmdbd); else the jobcomp file or `sacct -c`
    jobcomp: str | None = None  # the jobcomp/filetxt file, read directly (else `sacct -c`)


class SlurmExecutorSection(BaseModel):
    """The Slurm executor (docs/slurm.md). Pools name their cluster and partition in labels."""

    model_config = _STRICT
    clusters: dict[str, SlurmClusterEntry] = Field(default_factory=dict)
    gres: dict[str, str] = Field(default_factory=dict)  # GRES type -> "accelerator[:mig]"
    opt_in_qos: str | None = "carbon"         # the same opt-in as carbonplan.lua's settings,
    opt_in_partitions: list[str] = Field(default_factory=list)  # to find jobs it missed
    opt_in_comment: str | None = "carbonplan"
    default_slack: str = "1d"   # deadline of a job without --deadline: submit + limit + slack
    start_margin: str = "5m"    # latest start = deadline - time limit - margin
    federation: bool = False    # the clusters form a Slurm federation: jobs may change cluster
    command_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("federation")
    @classmethod
    def _federation_accounting(cls, v: bool, info: ValidationInfo) -> bool:
        lacking = sorted(n for n, c in (info.data.get("clusters") or {}).items()
                         if not c.accounting)
        if v and lacking:
            raise ValueError("a Slurm federation keeps its jobs in slurmdbd: set accounting = "
                             f"true on every cluster (not on {', '.join(lacking)})")
        return v

    @field_validator("default_slack", "start_margin")
    @classmethod
    def _duration(cls, v: str, info: ValidationInfo) -> str:
        try:
            parse_duration(v, info.field_name or "", allow_zero=True)
        except InputError as exc:
            raise ValueError(exc.reason) from None
        return v


class RayClusterEntry(BaseModel):
    model_config = _STRICT
    address: str  # the cluster's dashboard / Jobs API URL, e.g. http://ray-eu.internal:8265

    @field_validator("address")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"must be the dashboard's http(s):// URL, got '{v}'")
        return v.rstrip("/")


class RayPoolEntry(BaseModel):
    """Per-pool override of the resources a Ray job asks for (docs/ray.md)."""

    model_config = _STRICT
    resources: dict[str, float] | None = None  # replaces the region and market markers
    num_cpus: float | None = Field(default=None, ge=0)


class RayExecutorSection(BaseModel):
    model_config = _STRICT
    clusters: dict[str, RayClusterEntry] = Field(default_factory=dict)
    pools: dict[str, RayPoolEntry] = Field(default_factory=dict)  # key: pool name
    lost_after: str = "10m"  # a cluster unreachable this long has lost its jobs
    request_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("lost_after")
    @classmethod
    def _duration(cls, v: str) -> str:
        try:
            parse_duration(v, "lost_after", allow_zero=True)
        except InputError as exc:
            raise ValueError(exc.reason) from None
        return v

    def cluster_of(self, pool: Pool) -> str | None:
        """The cluster running `pool`: its `ray_cluster` label, else the cluster named after its
        region; None when neither is configured."""
        name = pool.labels.get("ray_cluster", pool.region)
        return name if name in self.clusters else None


class ExecutorSection(BaseModel):
    model_config = _STRICT
    kind: Literal["local", "slurm", "ray"] = "local"
    local: LocalExecutorSection = Field(default_factory=LocalExecutorSection)
    slurm: SlurmExecutorSection = Field(default_factory=SlurmExecutorSection)
    ray: RayExecutorSection = Field(default_factory=RayExecutorSection)


class MigEntry(BaseModel):
    model_config = _STRICT
    name: str
    slices: int = Field(ge=1, le=7)
    memory_gb: float = Field(gt=0)
    max_instances: int = Field(default=1, ge=1, le=7)


class AcceleratorEntry(BaseModel):
    """Add a GPU model or override facts of a catalog one."""

    model_config = _STRICT
    id: str
    name: str | None = None
    family: str | None = None
    memory_gb: float | None = Field(default=None, gt=0)
    idle_w: float | None = Field(default=None, ge=0)
    max_w: float | None = Field(default=None, gt=0)
    speed: float | None = Field(default=None, gt=0)
    embodied_kg: float | None = Field(default=None, ge=0)
    mig_profiles: list[MigEntry] | None = None


class RegionEntry(BaseModel):
    model_config = _STRICT
    name: str
    provider: str | None = None
    zone: str | None = None
    pue: float | None = Field(default=None, ge=1.0, le=3.0)
    power_cap_kw: float | None = Field(default=None, gt=0)
    energy_price_usd_per_kwh: float = Field(default=0.0, ge=0)
    location: str = ""


class PoolEntry(BaseModel):
    model_config = _STRICT
    region: str
    accelerator: str
    mig: str | None = None
    market: Market
    capacity: int = Field(ge=1)
    price_usd_per_unit_h: float | None = Field(default=None, ge=0)
    eviction_rate_per_h: float | None = Field(default=None, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)


class SiteConfig(BaseModel):
    """The whole TOML file."""

    model_config = _STRICT
    site: SiteSection = Field(default_factory=SiteSection)
    planner: PlannerSection = Field(default_factory=PlannerSection)
    carbon: CarbonSection = Field(default_factory=CarbonSection)
    store: StoreSection = Field(default_factory=StoreSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    accelerators: list[AcceleratorEntry] = Field(default_factory=list)
    regions: list[RegionEntry] = Field(default_factory=list)
    pools: list[PoolEntry] = Field(default_factory=list)

    source: str = Field(default="<embedded default>", exclude=True)

    def to_site(self) -> Site:
        """Resolve against the catalog into a `Site`. Raises InputError naming the config key."""
        return _build_site(self)


# ---------------------------------------------------------------------------------------------


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the last key of `loc`, for 'did you mean' on unknown keys."""
    model: Any = root
    skip = False  # the next key names a dict entry (executor.slurm.clusters.<name>)
    for key in loc[:-1]:
        if isinstance(key, int) or skip:
            skip = False
            continue
        field = model.model_fields.get(key) if isinstance(model, type) else None
        if field is None:
            return None
        ann = field.annotation
        for arg in (ann, *typing.get_args(ann)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                skip = typing.get_origin(ann) is dict
                break
        else:
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _config_error(exc: ValidationError) -> InputError:
    errors = exc.errors()
    # a typo'd key also makes the real key "missing": report the typo
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(err.get("loc", ()))
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in loc).lstrip(".")
    if err.get("type") == "extra_forbidden" and loc:
        model = _model_at(SiteConfig, loc)
        hint = did_you_mean(str(loc[-1]), model.model_fields) if model else ""
        return InputError(f"config {path}", f"unknown key{hint}")
    reason = input_error(exc).reason if err is errors[0] else err.get("msg", "is invalid")
    return InputError(f"config {path}" if path else "config", reason)


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file to use, or None for the embedded default."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise InputError("--config", f"no such file: {p}")
        return p
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InputError(CONFIG_ENV, f"no such file: {p}")
        return p
    local = Path("carbonplan.toml")
    if local.is_file():
        return local
    from platformdirs import user_config_dir

    user = Path(user_config_dir("carbonplan")) / "config.toml"
    return user if user.is_file() else None


def load_config(explicit: str | os.PathLike | None = None) -> SiteConfig:
    """Load and validate the site config (or the embedded default). Raises InputError."""
    path = find_config(explicit)
    if path is None:
        return SiteConfig()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config {path}", f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(f"config {path}", f"cannot read: {exc.strerror}") from None
    cfg = parse_config(data)
    cfg.source = str(path)
    cfg.to_site()  # resolve now, so every error surfaces at load time
    return cfg


def parse_config(data: dict[str, Any]) -> SiteConfig:
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc) from None


def _build_accelerators(cfg: SiteConfig) -> dict[str, Accelerator]:
    accs = dict(catalog.accelerators())
    for i, e in enumerate(cfg.accelerators):
        key = f"config accelerators[{i}]"
        base = accs.get(e.id)
        if base is None and None in (e.idle_w, e.max_w, e.speed, e.memory_gb):
            raise InputError(key, f"new accelerator '{e.id}' needs memory_gb, idle_w, max_w "
                                  "and speed")
        data = base.model_dump() if base else {"id": e.id, "name": e.id, "family": e.id,
                                                "embodied_kg": 150.0}
        for f in ("name", "family", "memory_gb", "idle_w", "max_w", "speed", "embodied_kg"):
            if getattr(e, f) is not None:
                data[f] = getattr(e, f)
        if e.mig_profiles is not None:
            data["mig_profiles"] = {m.name: MigProfile(**m.model_dump()) for m in e.mig_profiles}
        try:
            accs[e.id] = Accelerator.model_validate(data)
        except ValidationError as exc:
            raise input_error(exc, prefix=key + ".") from None
    return accs


def _build_regions(cfg: SiteConfig) -> dict[str, Region]:
    cat = catalog.regions()
    zones = catalog.zone_ids()
    out: dict[str, Region] = {}
    for i, e in enumerate(cfg.regions):
        key = f"config regions[{i}]"
        if e.name in out:
            raise InputError(f"{key}.name", f"region '{e.name}' is defined twice")
        base = cat.get(e.name)
        zone = e.zone or (base.zone if base else None)
        if zone is None:
            raise InputError(f"{key}.zone", f"is required for region '{e.name}' (not in catalog)")
        if zone not in zones:
            raise InputError(f"{key}.zone", unknown("grid zone", zone, zones))
        provider = e.provider or (base.provider if base else "onprem")
        pue = e.pue or (base.pue if base else catalog.PROVIDER_PUE.get(provider, 1.58))
        out[e.name] = Region(name=e.name, provider=provider, zone=zone, pue=pue,
                             power_cap_kw=e.power_cap_kw,
                             energy_price_usd_per_kwh=e.energy_price_usd_per_kwh,
                             location=e.location or (base.location if base else ""),
                             continent=base.continent if base else "")
    return out


def _build_site(cfg: SiteConfig) -> Site:
    accs = _build_accelerators(cfg)
    regions = _build_regions(cfg)
    pools: list[Pool] = []
    if not cfg.pools:
        base = catalog.builtin_site(cfg.site.default_pool_capacity)
        regions = {**base.regions, **regions}
        pools = list(base.pools)
    cat_regions = catalog.regions()
    seen: set[str] = set()
    for i, e in enumerate(cfg.pools):
        key = f"config pools[{i}]"
        if e.region not in regions:
            if e.region not in cat_regions:
                raise InputError(f"{key}.region",
                                 unknown("region", e.region, set(regions) | set(cat_regions)))
            regions[e.region] = cat_regions[e.region]
        if e.accelerator not in accs:
            raise InputError(f"{key}.accelerator", unknown("accelerator", e.accelerator, accs))
        acc = accs[e.accelerator]
        if e.mig is not None and e.mig not in acc.mig_profiles:
            raise InputError(f"{key}.mig", unknown(f"MIG profile of {acc.id}", e.mig,
                                                   acc.mig_profiles) if acc.mig_profiles
                             else f"{acc.id} has no MIG profiles")
        price, rate = e.price_usd_per_unit_h, e.eviction_rate_per_h
        # a region's catalog offer is the cloud's; an owned pool there is one's own hardware,
        # which pays energy, not the cloud's rent (docs/config.md: 0 for owned)
        if e.region in cat_regions and e.market != Market.OWNED and (price is None
                                                                      or rate is None):
            offer = catalog.region_prices(e.region).get(e.accelerator)
            if offer and e.mig is None:
                od, spot, band_rate = offer
                if price is None:
                    price = spot if e.market == Market.SPOT else od
                if rate is None and e.market == Market.SPOT:
                    rate = band_rate
        if price is None:
            if e.market == Market.OWNED:
                price = 0.0
            else:
                raise InputError(f"{key}.price_usd_per_unit_h",
                                 f"is required: the catalog has no price for {e.accelerator}"
                                 f"{':' + e.mig if e.mig else ''} in {e.region}")
        pool = Pool(region=e.region, accelerator=e.accelerator, mig=e.mig, market=e.market,
                    capacity=e.capacity, price_usd_per_unit_h=price,
                    eviction_rate_per_h=rate or 0.0, labels=e.labels)
        if pool.name in seen:
            raise InputError(key, f"pool '{pool.name}' is defined twice")
        seen.add(pool.name)
        pools.append(pool)
    if cfg.executor.kind == "slurm":
        _check_slurm(cfg, accs)
    home = cfg.site.home_region
    if home is not None and home not in regions:
        raise InputError("config site.home_region", unknown("region", home, regions))
    if home is None:
        home = next(iter(regions)) if regions else None
        if not cfg.pools and "us-east-1" in regions:
            home = "us-east-1"
    if cfg.executor.kind == "ray":
        _check_ray(cfg.executor.ray, pools)
    return Site(accelerators=accs, regions=regions, pools=tuple(pools),
                carbon_price_usd_per_t=cfg.site.carbon_price_usd_per_t,
                carbon_budget_t=cfg.site.carbon_budget_t,
                embodied_lifetime_h=cfg.site.embodied_lifetime_years * 8760.0,
                reference_gpu=catalog.REFERENCE_GPU, home_region=home)


def _check_slurm(cfg: SiteConfig, accs: dict[str, Accelerator]) -> None:
    """Every pool names a configured cluster and a partition; GRES types name known GPUs."""
    sl = cfg.executor.slurm
    if not sl.clusters:
        raise InputError("config executor.slurm.clusters", "is required when kind = \"slurm\"")
    for gres, target in sl.gres.items():
        acc, _, mig = target.partition(":")
        key = f"config executor.slurm.gres.{gres}"
        if acc not in accs:
            raise InputError(key, unknown("accelerator", acc, accs))
        if mig and mig not in accs[acc].mig_profiles:
            raise InputError(key, unknown(f"MIG profile of {acc}", mig, accs[acc].mig_profiles))
    for i, e in enumerate(cfg.pools):
        key = f"config pools[{i}].labels"
        cluster = e.labels.get("cluster")
        if cluster is None or cluster not in sl.clusters:
            raise InputError(f"{key}.cluster", "is required (the pool's Slurm cluster)"
                             if cluster is None else unknown("cluster", cluster, sl.clusters))
        if not e.labels.get("partition"):
            raise InputError(f"{key}.partition", "is required (the pool's Slurm partition)")


def _check_ray(ray: RayExecutorSection, pools: list[Pool]) -> None:
    """Every pool must reach a Ray cluster, and every override must name a pool."""
    if not ray.clusters:
        raise InputError("config executor.ray.clusters",
                         "is required when executor.kind = 'ray' (name -> address)")
    for i, pool in enumerate(pools):
        if ray.cluster_of(pool) is not None:
            continue
        if "ray_cluster" in pool.labels:
            raise InputError(f"config pools[{i}].labels.ray_cluster",
                             unknown("Ray cluster", pool.labels["ray_cluster"], ray.clusters))
        raise InputError(f"config pools[{i}]",
                         f"no Ray cluster for pool '{pool.name}': add "
                         f"[executor.ray.clusters.{pool.region}] or labels.ray_cluster")
    names = {p.name for p in pools}
    for name in ray.pools:
        if name not in names:
            raise InputError(f"config executor.ray.pools.{name}", unknown("pool", name, names))
