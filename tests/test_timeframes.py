import backtrader
import pytest

from backtrader_live import ConfigError
from backtrader_live.feeds import BinanceData
from backtrader_live.timeframes import TIMEFRAME_MAP, TIMEFRAME_SPECS, parse_timeframe

ALL = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M']


def test_the_map_has_exactly_the_documented_timeframes():
    assert list(TIMEFRAME_MAP) == list(TIMEFRAME_SPECS) == ALL
    assert BinanceData.TIMEFRAME_MAP is TIMEFRAME_MAP
    assert BinanceData.TIMEFRAME_SPECS is TIMEFRAME_SPECS
    assert TIMEFRAME_MAP == {
        '1m': '1min', '3m': '3min', '5m': '5min', '15m': '15min', '30m': '30min',
        '1h': '1hour', '2h': '2hour', '4h': '4hour', '6h': '6hour', '8h': '8hour',
        '12h': '12hour', '1d': '1day', '3d': '3day', '1w': '1week', '1M': '1month'}


@pytest.mark.parametrize('tf,expected', [
    ('1m', (backtrader.TimeFrame.Minutes, 1, 60_000)),
    ('1h', (backtrader.TimeFrame.Minutes, 60, 3_600_000)),
    ('8h', (backtrader.TimeFrame.Minutes, 480, 28_800_000)),
    ('1d', (backtrader.TimeFrame.Days, 1, 86_400_000)),
    ('3d', (backtrader.TimeFrame.Days, 3, 259_200_000)),
    ('1w', (backtrader.TimeFrame.Weeks, 1, 604_800_000)),
    ('1M', (backtrader.TimeFrame.Months, 1, 2_678_400_000)),
])
def test_parse(tf, expected):
    assert parse_timeframe(tf) == expected


@pytest.mark.parametrize('bad', ['2m', '1H', '60', '', None, 60, '1s', '1y'])
def test_unknown_timeframe_names_the_valid_ones(bad):
    with pytest.raises(ValueError) as err:
        parse_timeframe(bad)
    assert isinstance(err.value, ConfigError)
    assert 'valid timeframes: 1m, 3m' in str(err.value) and '1M' in str(err.value)


def test_an_exchange_can_narrow_the_list():
    with pytest.raises(ConfigError, match='valid timeframes: 1m, 1h$'):
        parse_timeframe('8h', supported=('1m', '1h'))


def test_from_timeframe_string_sets_backtrader_timeframe():
    data = BinanceData.from_timeframe_string('4h', None, 'BTC/USDT')
    assert (data.p.timeframe, data.p.compression) == (backtrader.TimeFrame.Minutes, 240)
    assert data.p.dataname == 'BTC/USDT'
    with pytest.raises(ConfigError, match='unknown timeframe'):
        BinanceData.from_timeframe_string('7m', None, 'BTC/USDT')
