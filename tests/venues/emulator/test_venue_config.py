"""`sigma venue`'s settings: defaults, the YAML file, command-line overrides, --account."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sigma.venues.emulator.binance_wire import BinanceSettings
from sigma.venues.emulator.config import (
    DEMO_ACCOUNTS,
    PROTOCOL_SETTINGS,
    AccountConfig,
    ProtocolConfig,
    VenueConfig,
    build_config,
    load_venue_config,
    parse_account,
    settings_model,
)
from sigma.venues.emulator.upbit_settings import UpbitSettings

D = Decimal


def test_defaults() -> None:
    config = VenueConfig()
    assert (config.host, config.port, config.source) == ("127.0.0.1", 8900, "synthetic")
    assert (config.speed, config.seed, config.history_bars) == (60.0, 0, 1440)
    assert config.state_file is None and config.admin_token is None
    assert config.faults == {}
    # Binance's VIP 0 tier, Upbit's KRW market fee.
    assert (config.binance.maker_fee, config.binance.taker_fee) == (D("0.001"), D("0.001"))
    assert (config.upbit.maker_fee, config.upbit.taker_fee) == (D("0.0005"), D("0.0005"))
    assert config.binance.enabled and config.upbit.enabled
    assert config.binance.accounts == [] and config.binance.settings == {}
    # Each config gets its own protocol objects.
    assert VenueConfig().binance is not config.binance


@pytest.mark.parametrize(
    "fields",
    [
        {"port": -1},
        {"port": 65536},
        {"speed": 0},
        {"speed": 100_001},
        {"history_bars": -1},
        {"history_bars": 200_001},
        {"unknown": 1},
        {"faults": {"nope": 1}},
        {"faults": {"error_5xx": -1}},
        {"binance": {"maker_fee": "0.1", "taker_fee": "0.001"}},
        {"binance": {"maker_fee": "-0.001", "taker_fee": "0.001"}},
        {"upbit": {"taker_fee": "0.001"}},  # a protocol's fees are required when it is given
        {"upbit": {"maker_fee": 0, "taker_fee": 0, "extra": 1}},
    ],
)
def test_bad_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        VenueConfig.model_validate(fields)


def test_good_edges_are_accepted() -> None:
    config = VenueConfig.model_validate(
        {
            "port": 0,
            "speed": 100_000,
            "history_bars": 0,
            "faults": {"latency_ms": 5, "clock_skew_ms": -100},
            "binance": {"maker_fee": 0, "taker_fee": "0.0999", "enabled": False},
        }
    )
    assert config.port == 0 and config.speed == 100_000
    assert config.binance.taker_fee == D("0.0999") and not config.binance.enabled
    assert config.faults == {"latency_ms": 5, "clock_skew_ms": -100}


@pytest.mark.parametrize(
    "account",
    [
        {"api_key": "", "secret": "s"},
        {"api_key": "k" * 129, "secret": "s"},
        {"api_key": "k", "secret": ""},
        {"api_key": "k", "secret": "s" * 257},
        {"api_key": "k", "secret": "s", "balances": {"USDT": "-1"}},
        {"api_key": "k", "secret": "s", "balances": {"USDT": "NaN"}},
        {"api_key": "k", "secret": "s", "balances": {"USDT": "Infinity"}},
        {"api_key": "k", "secret": "s", "balances": {"USDT": "lots"}},
    ],
)
def test_bad_accounts_are_refused(account: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AccountConfig.model_validate(account)


def test_load_reads_yaml_and_applies_overrides(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text(
        """
port: 9100
source: data/btc.csv
speed: 120
state_file: state/venue.jsonl
faults:
  latency_ms: 20
binance:
  maker_fee: "0.00075"
  taker_fee: "0.00075"
  accounts:
    - api_key: k1
      secret: s1
      balances: {USDT: "1000.50", BTC: 0.25}
  settings:
    weight_limit: 1200
upbit:
  enabled: false
  maker_fee: 0.0005
  taker_fee: 0.0005
""",
        encoding="utf-8",
    )
    config = load_venue_config(path, port=9200, seed=None, history_bars=10)
    assert config.port == 9200  # the command line wins
    assert config.seed == 0  # an option not given leaves the file's (or default) value
    assert config.history_bars == 10
    assert config.source == "data/btc.csv" and config.speed == 120.0
    assert config.state_file == Path("state/venue.jsonl")
    assert config.faults == {"latency_ms": 20}
    assert config.binance.maker_fee == D("0.00075")
    [account] = config.binance.accounts
    assert account.balances == {"USDT": D("1000.50"), "BTC": D("0.25")}
    assert config.binance.settings == {"weight_limit": 1200}
    assert not config.upbit.enabled


def test_load_without_a_file_or_with_an_empty_one(tmp_path: Path) -> None:
    assert load_venue_config() == VenueConfig()
    assert load_venue_config(None, admin_token="t").admin_token == "t"
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_venue_config(empty) == VenueConfig()


def test_load_refuses_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text("- port: 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping of settings"):
        load_venue_config(path)
    path.write_text("port: [1\n", encoding="utf-8")
    with pytest.raises(Exception, match="flow sequence"):
        load_venue_config(path)
    path.write_text("prot: 1\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="prot"):
        load_venue_config(path)


def test_parse_account() -> None:
    protocol, account = parse_account("binance:key-1:secret-1:usdt=1000, btc = 0.5,")
    assert protocol == "binance"
    assert account == AccountConfig(
        api_key="key-1", secret="secret-1", balances={"USDT": D(1000), "BTC": D("0.5")}
    )
    protocol, account = parse_account("upbit:k:s")
    assert protocol == "upbit" and account.balances == {}
    assert parse_account("upbit:k:s:")[1].balances == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftx:k:s", "expected binance|upbit:KEY:SECRET"),
        ("binance:k", "expected binance|upbit:KEY:SECRET"),
        ("binance", "expected binance|upbit:KEY:SECRET"),
        ("binance:k:s:USDT", "balance 'USDT' is not ASSET=AMOUNT"),
        ("binance:k:s:=5", "balance '=5' is not ASSET=AMOUNT"),
        ("binance:k:s:USDT=abc", "valid decimal"),
        ("binance:k:s:USDT=1:2", "valid decimal"),  # a colon past the third is the balances'
        ("binance:k:s:USDT=", "valid decimal"),
        ("binance:k:s:USDT=-1", "must be a finite amount >= 0"),
        ("binance::s", "at least 1 character"),
    ],
)
def test_parse_account_refuses_bad_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_account(text)


def test_protocol_config_needs_its_fees() -> None:
    with pytest.raises(ValidationError):
        ProtocolConfig.model_validate({})
    assert ProtocolConfig(maker_fee=D(0), taker_fee=D(0)).accounts == []


# ---------------------------------------------------------------- the command's settings
def test_build_config_funds_demo_accounts_where_a_protocol_has_none() -> None:
    config = build_config(None, [], None, {})
    assert config.binance.accounts == [DEMO_ACCOUNTS["binance"]]
    assert config.upbit.accounts == [DEMO_ACCOUNTS["upbit"]]
    assert DEMO_ACCOUNTS["upbit"].balances["KRW"] == D(100_000_000)
    assert config.binance.enabled and config.upbit.enabled


def test_build_config_adds_accounts_options_and_faults_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text(
        """
port: 9100
faults: {latency_ms: 20, error_5xx: 1}
binance:
  maker_fee: 0.001
  taker_fee: 0.001
  accounts: [{api_key: file-key, secret: s}]
""",
        encoding="utf-8",
    )
    config = build_config(
        path,
        ["binance:k2:s2:USDT=5", "upbit:u1:s1:KRW=1000000"],
        " binance, upbit ,",
        {"error_5xx": 3},
        port=None,
        speed=600,
    )
    assert config.port == 9100 and config.speed == 600
    assert [a.api_key for a in config.binance.accounts] == ["file-key", "k2"]
    assert config.binance.accounts[1].balances == {"USDT": D(5)}
    assert [a.api_key for a in config.upbit.accounts] == ["u1"]  # no demo account then
    assert config.faults == {"latency_ms": 20, "error_5xx": 3}


@pytest.mark.parametrize(
    ("protocols", "binance", "upbit"), [("upbit", False, True), ("binance", True, False)]
)
def test_build_config_enables_the_protocols_asked_for(
    protocols: str, binance: bool, upbit: bool
) -> None:
    config = build_config(None, [], protocols, {})
    assert (config.binance.enabled, config.upbit.enabled) == (binance, upbit)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocols": "ftx"}, "--protocols takes binance and/or upbit, got 'ftx'"),
        ({"protocols": " , "}, "--protocols takes binance and/or upbit"),
        ({"protocols": "binance,ftx"}, "--protocols takes binance and/or upbit"),
        ({"port": 70000}, "port: Input should be less than or equal to 65535"),
        ({"accounts": ["binance:k:s:USDT=-1"]}, "balances: Value error, balance of USDT must"),
        ({"accounts": ["kraken:k:s"]}, "expected binance|upbit:KEY:SECRET"),
        ({"faults": {"nope": 1}}, "faults: Value error, unknown fault 'nope'"),
    ],
)
def test_build_config_names_the_wrong_option(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"accounts": [], "protocols": None, "faults": {}}
    args.update(kwargs)
    options = {"port": args.pop("port")} if "port" in args else {}
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        build_config(None, args["accounts"], args["protocols"], args["faults"], **options)
    assert not isinstance(caught.value, ValidationError)


# ---------------------------------------------------------------- protocol settings
def _settings_file(tmp_path: Path, protocol: str, settings: str) -> Path:
    path = tmp_path / "venue.yaml"
    path.write_text(
        f"{protocol}:\n  maker_fee: 0.001\n  taker_fee: 0.001\n  settings: {settings}\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("protocol", "settings", "message"),
    [
        # an unknown key: the message lists the keys there are
        ("binance", "{ping_evry_ms: 5}", "binance has no setting 'ping_evry_ms'; the settings"),
        ("upbit", "{weight_limit: 5}", "upbit has no setting 'weight_limit'; the settings"),
        # a string, a bool or a float where a whole number belongs
        ("binance", "{weight_limit: '1200'}", "weight_limit: Input should be a valid integer"),
        ("binance", "{ban_after: true}", "ban_after: Input should be a valid integer"),
        ("upbit", "{order_per_window: 8.5}", "order_per_window: Input should be a valid integer"),
        # zero and negative counts and intervals
        ("binance", "{ping_every_ms: 0}", "ping_every_ms: Input should be greater than 0, got 0"),
        ("binance", "{pong_timeout_ms: -1}", "pong_timeout_ms: Input should be greater than 0"),
        ("binance", "{weight_limit: 0}", "weight_limit: Input should be greater than 0"),
        ("binance", "{weight_window_ms: 0}", "weight_window_ms: Input should be greater than 0"),
        ("binance", "{orders_per_10s: 0}", "orders_per_10s: Input should be greater than 0"),
        ("binance", "{max_recv_window_ms: 0}", "max_recv_window_ms: Input should be greater"),
        ("binance", "{ban_after: -1}", "ban_after: Input should be greater than or equal to 0"),
        ("upbit", "{window_ms: 0}", "window_ms: Input should be greater than 0"),
        ("upbit", "{quotation_per_window: -3}", "quotation_per_window: Input should be greater"),
        ("upbit", "{ban_ms: 0}", "ban_ms: Input should be greater than 0"),
        # a window Binance could not name (X-MBX-USED-WEIGHT-<n><S|M|D>)
        ("binance", "{weight_window_ms: 1500}", "Input should be a multiple of 1000, got 1500"),
        # amounts: not a number, not finite, not positive
        ("upbit", "{min_order_total: lots}", "min_order_total: Input should be a valid decimal"),
        ("upbit", "{min_order_total: .nan}", "min_order_total: Input should be a finite number"),
        ("upbit", "{max_order_total: .inf}", "max_order_total: Input should be a finite number"),
        ("upbit", "{min_order_total: 0}", "min_order_total: Input should be greater than 0"),
        # book depths past what Upbit serves
        ("upbit", "{rest_book_depth: 31}", "rest_book_depth: Input should be less than or equal"),
        ("upbit", "{stream_book_depth: 0}", "stream_book_depth: Input should be greater than or"),
        # settings that are each fine but not together
        ("binance", "{ping_every_ms: 60000}", "pong_timeout_ms (60000) must be longer than"),
        ("upbit", "{min_order_total: 10, max_order_total: 5}", "must not exceed max_order_total"),
        # not a mapping at all
        ("binance", "[1, 2]", "binance.settings: Input should be a valid dictionary"),
    ],
)
def test_bad_protocol_settings_are_refused_naming_file_protocol_and_key(
    tmp_path: Path, protocol: str, settings: str, message: str
) -> None:
    path = _settings_file(tmp_path, protocol, settings)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        build_config(path, [], None, {})
    text = str(caught.value)
    assert not isinstance(caught.value, ValidationError)
    assert text.startswith(f"{path}: {protocol}.settings"), text
    # The same refusal when the config is built in code (tests, `sigma up`).
    with pytest.raises(ValidationError, match=re.escape(message.split(": ", 1)[-1])):
        load_venue_config(path)


def test_a_bad_setting_says_what_the_key_takes(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, "binance", "{weight_window_ms: '60000'}")
    with pytest.raises(ValueError) as caught:
        build_config(path, [], None, {})
    assert str(caught.value) == (
        f"{path}: binance.settings.weight_window_ms: Input should be a valid integer, got "
        "'60000'; weight_window_ms takes a whole number (not quoted) > 0, a multiple of 1000 "
        "(default 60000)"
    )
    path = _settings_file(tmp_path, "upbit", "{ban_after: -1, ban_ms: 0}")
    with pytest.raises(ValueError, match=r"upbit\.settings\.ban_after: .* \(and 1 more\)$"):
        build_config(path, [], None, {})


def test_an_option_given_on_the_command_line_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, "binance", "{weight_limit: 1200}")
    with pytest.raises(ValueError) as caught:
        build_config(path, [], None, {}, port=70000)
    assert str(caught.value) == "port: Input should be less than or equal to 65535"


@pytest.mark.parametrize("protocol", ["binance", "upbit"])
def test_every_setting_has_a_checked_kind(protocol: str) -> None:
    # The YAML's checks come from the dataclass: each field is there, with its default, and
    # each has bounds (a new field declared as a bare `int` would take 0 or -1 unchecked).
    settings_class = PROTOCOL_SETTINGS[protocol]
    model = settings_model(settings_class)
    fields = {f.name: f.default for f in dataclasses.fields(settings_class)}
    assert {k: v.default for k, v in model.model_fields.items()} == fields
    for name, info in model.model_fields.items():
        assert info.metadata, f"{settings_class.__name__}.{name} has no bounds"
    # The defaults pass their own checks.
    assert model.model_validate({}).model_dump() == fields


def test_good_protocol_settings_are_kept_as_given(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text(
        """
binance:
  maker_fee: 0.001
  taker_fee: 0.001
  settings: {weight_limit: 1200, weight_window_ms: 1000, ban_after: 0, ping_every_ms: 5000}
upbit:
  maker_fee: 0.0005
  taker_fee: 0.0005
  settings: {min_order_total: "6000", max_order_total: 1000000, rest_book_depth: 30}
""",
        encoding="utf-8",
    )
    config = build_config(path, [], None, {})
    assert config.binance.settings == {
        "weight_limit": 1200,
        "weight_window_ms": 1000,
        "ban_after": 0,
        "ping_every_ms": 5000,
    }
    assert config.upbit.settings == {
        "min_order_total": D(6000),
        "max_order_total": D(1_000_000),
        "rest_book_depth": 30,
    }
    # What the settings dataclasses are built from at start.
    assert BinanceSettings(**config.binance.settings).ping_every_ms == 5000
    assert UpbitSettings(**config.upbit.settings).min_order_total == D(6000)


def test_the_documented_settings_example_loads_and_names_every_field(tmp_path: Path) -> None:
    # docs/venue.md "Protocol settings": its YAML is a working file listing each field, at
    # the defaults.
    doc = (Path(__file__).parents[3] / "docs" / "venue.md").read_text(encoding="utf-8")
    section = doc.split("### Protocol settings", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "venue.yaml"
    path.write_text(example, encoding="utf-8")
    config = build_config(path, [], None, {})
    for protocol, settings_class in PROTOCOL_SETTINGS.items():
        given = getattr(config, protocol).settings
        assert set(given) == {f.name for f in dataclasses.fields(settings_class)}, protocol
        assert settings_class(**given) == settings_class(), protocol
