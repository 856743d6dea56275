"""Save the chart of a finished run as a PNG, on machines with no display.

Why this exists: ``backtrader.plot`` calls ``matplotlib.use('TKAgg')`` when
it is imported, and recent matplotlib refuses a GUI backend without a display
(servers, CI, containers), so a plain ``cerebro.plot()`` fails there; its
``use='Agg'`` argument comes too late to help. Selecting the Agg backend and
importing ``matplotlib.pyplot`` *before* backtrader's plot module is imported
makes upstream's plotting work unchanged; we then save the figures instead
of showing them.

matplotlib is an optional dependency: ``pip install "backtrader-live[plot]"``.
"""
import os
import warnings

__all__ = ['save_plot']


def _headless_pyplot():
    """matplotlib.pyplot on the Agg backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError('plotting needs matplotlib, the "plot" extra: '
                          'python -m pip install "backtrader-live[plot]" '
                          '(or -e ".[plot]" in a clone)') from None
    # force=True also wins if backtrader.plot was imported earlier and already
    # asked for TkAgg: a file needs no GUI, so Agg is always right here.
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _show_dates(fig, rotation=15):
    """Put the date labels back under the bottom chart.

    backtrader hides every axis's tick labels and then re-shows the bottom
    axis's with ``setp(ax.get_xticklabels(), visible=True)``; matplotlib >= 3.x
    only returns *visible* labels there, so nothing is re-shown and the chart
    has no dates. tick_params fixes the axis itself, not today's Text objects.
    """
    if not fig.axes:
        return
    bottom = min(ax.get_position().y0 for ax in fig.axes)
    for ax in fig.axes:
        if ax.get_position().y0 == bottom:
            ax.tick_params(axis='x', which='major', labelbottom=True,
                           labelrotation=rotation)


def save_plot(cerebro, path, *, width=16.0, height=9.0, dpi=100, **plot_kwargs):
    """Write the first strategy's chart of a finished ``cerebro`` run to ``path``.

    ``plot_kwargs`` go to ``cerebro.plot`` (e.g. ``style='candle'``,
    ``start=``, ``end=``, ``numfigs=``). ``width``/``height`` are in inches.
    Returns ``path``.
    """
    if not getattr(cerebro, 'runstrats', None):
        raise ValueError('nothing to plot: call cerebro.run() (or run_live) first')
    plt = _headless_pyplot()
    # Only now: backtrader's plot module must see Agg (and pyplot) first.
    with warnings.catch_warnings():
        # cerebro.plot() ends with pyplot.show(), which Agg can only warn about
        warnings.filterwarnings('ignore', message='.*non-interactive.*')
        figs = cerebro.plot(iplot=False, **plot_kwargs)
    # cerebro.plot returns None with exactbars > 0 (nothing kept to draw) and
    # an empty figure list when the strategy never saw a bar.
    if not figs or not figs[0]:
        raise ValueError('nothing to plot: the run saw no bar, or used exactbars > 0 '
                         '(which discards the history a chart needs)')
    fig = figs[0][0]
    try:
        _show_dates(fig)
        fig.set_size_inches(width, height)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches='tight')
    finally:
        # figures live in pyplot's registry until closed: free them all
        for strat_figs in figs:
            for f in strat_figs or ():
                plt.close(f)
    return path
