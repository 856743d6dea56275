"""The report as one self-contained HTML file (a tear-sheet) and the equity
curve as a PNG.

The figures are those :func:`report.summarize` computed (the statistics by
empyrical); the page only lays them out, with the equity/drawdown chart
embedded as a data: URI, so the file can be mailed or archived alone (no
scripts, no external assets). quantstats is not used: it would add eleven
packages to the ``report`` extra (yfinance, a market-data scraper, and its
HTTP stack among them) to re-derive statistics empyrical already gives, and
its tear-sheet assumes daily returns while a journal holds bars of any
timeframe.
"""
import base64
import html
import io

#: the summary's figures in page order (a key missing from the summary is skipped)
SUMMARY_KEYS = ('first_bar', 'last_bar', 'bars', 'trades', 'won', 'win_rate', 'pnl',
                'pnl_net', 'fees', 'fills', 'start_equity', 'end_equity', 'return',
                'max_drawdown', 'annual_return', 'annual_volatility', 'sharpe', 'sortino',
                'note')
TRADE_COLUMNS = ('symbol', 'opened_at', 'closed_at', 'barlen', 'pnl', 'pnlcomm',
                 'commission')
SYMBOL_COLUMNS = ('symbol', 'trades', 'pnl_net', 'fills', 'volume', 'fees')
STYLE = ('body{font-family:sans-serif;margin:2em;color:#222}'
         'table{border-collapse:collapse;margin:1em 0}'
         'th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}'
         'th{background:#f3f3f3}td.text,th.text{text-align:left}')


def equity_png(result, target):
    """The equity curve and its drawdown as a PNG (matplotlib, no display) to
    ``target``, a path or a binary file object."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    times = [e['at'] for e in result['equity']]
    values = [e['value'] for e in result['equity']]
    peak, drawdown = None, []
    for value in values:
        peak = value if peak is None or value > peak else peak
        drawdown.append((value / peak - 1) * 100 if peak else 0.0)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 6),
                                      gridspec_kw={'height_ratios': [3, 1]})
    top.plot(times, values)
    top.set_ylabel('equity')
    top.set_title('run(s) %s' % ', '.join(map(str, result['summary']['runs'])))
    bottom.fill_between(times, drawdown, 0, color='tab:red', alpha=0.4)
    bottom.set_ylabel('drawdown %')
    fig.autofmt_xdate()
    fig.savefig(target, dpi=100, format='png')
    plt.close(fig)


def figure(value, digits=10):
    """A figure as shown: floats with ``digits`` significant digits, None as '-'."""
    if value is None:
        return '-'
    if isinstance(value, float):
        return '%.*g' % (digits, value)
    return str(value)


def _row(cells, header=False):
    tag = 'th' if header else 'td'
    return '<tr>%s</tr>' % ''.join(
        '<%s%s>%s</%s>' % (tag, '' if isinstance(c, (int, float)) and not isinstance(c, bool)
                           else ' class="text"', html.escape(figure(c)), tag) for c in cells)


def _table(title, columns, rows):
    body = [_row(columns, header=True)] + [_row([r.get(c) for c in columns]) for r in rows]
    return '<h2>%s</h2><table>%s</table>' % (html.escape(title), ''.join(body))


def _summary(summary):
    rows = ''.join('<tr data-key="%s"><th class="text">%s</th><td>%s</td></tr>' % (
        key, key, html.escape(figure(summary[key]))) for key in SUMMARY_KEYS if key in summary)
    return '<h2>Summary</h2><table id="summary">%s</table>' % rows


def tearsheet_html(result):
    """The whole page as a string."""
    runs = ', '.join(map(str, result['summary']['runs']))
    parts = ['<!DOCTYPE html><html><head><meta charset="utf-8">',
             '<title>backtrader-live report, run(s) %s</title>' % html.escape(runs),
             '<style>%s</style></head><body>' % STYLE,
             '<h1>backtrader-live report, run(s) %s</h1>' % html.escape(runs),
             _summary(result['summary'])]
    if result['equity']:
        png = io.BytesIO()
        equity_png(result, png)
        parts.append('<h2>Equity and drawdown</h2><img alt="equity curve" '
                     'src="data:image/png;base64,%s">'
                     % base64.b64encode(png.getvalue()).decode('ascii'))
    parts.append(_table('Per symbol', SYMBOL_COLUMNS, result['symbols']))
    parts.append(_table('Trades (%d)' % len(result['trades']), TRADE_COLUMNS,
                        result['trades']))
    parts.append('</body></html>')
    return '\n'.join(parts)


def write_tearsheet(result, path):
    with open(path, 'w', encoding='utf-8') as f:
        f.write(tearsheet_html(result))
