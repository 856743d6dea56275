"""The soak's invariants: the simulator's own records against what the
strategy was told (tests/soakkit.py). Each broken one is recorded with
``soak.fail(invariant, detail)``; nothing here raises for it.

- **orders**: one exchange order per client order id; every exchange order
  with our client id is known to the strategy with the same final status;
  every order the strategy was told is on the exchange is there; none left
  unresolved (Submitted) or open after the final cancels;
- **fills**: per order, the strategy was told of as many executions as the
  exchange has trades, with the same sizes (net of a fee paid in the coin)
  and prices;
- **bars**: exactly once, in order, no hole, every one the run stepped;
- **position**: the strategy's equals the exchange's, exactly in the step
  (zero when the exchange is flat), and flat after the final ``close()``.
"""
import collections

from faultkit import _ms, closed_bar_times

FINAL = {'FILLED': ('Completed',), 'CANCELED': ('Canceled',), 'EXPIRED': ('Expired',),
         'REJECTED': ('Rejected',), 'NEW': ('Accepted',), 'PARTIALLY_FILLED': ('Partial',)}
# What each exchange calls a final status, where it differs: Bybit's v5 order
# statuses have no "Expired" (an expired order reads Cancelled / Deactivated).
SAYS = {'bybit': {'EXPIRED': ('Canceled', 'Expired')}}
TOL = 1e-9      # relative, for float sizes and prices against exact decimals


def check_all(soak, died=False):
    """Every invariant; after a run death only those about orders and fills
    (the run ended early: bars, position and the final close cannot hold)."""
    soak.dust = 0.0
    if getattr(soak.run_.rec, 'seen', None) is None:
        return soak.fail('run death', 'the strategy never started: %r' % soak.run_.error)
    if not died:
        if soak.probe:
            check_probe(soak)
        check_bars(soak)
    by_cid = check_orders(soak, died)
    check_fills(soak, by_cid)
    if not died:
        check_position(soak)


def check_probe(soak):
    """Futures: after buy 9 steps, sell 2, close() (no fault yet) both flat."""
    probe = getattr(soak.run_.rec, 'probe', None)
    if probe is None:
        soak.fail('position', 'the probe (buy 9 steps, sell 2, close()) did not run')
    elif not soak.v.spot and (probe[0] != 0 or probe[1] != 0):
        soak.fail('position', 'after buy 9 steps, sell 2 and close(): strategy %r, exchange %s '
                  '(both must be 0); orders: %s' % (probe[0], probe[1], [
                      _order_text(soak, ref) for ref, c in soak.run_.rec.created.items()
                      if c[0] < 3]))


def _around(soak, bar):
    """The faults injected at the order's bar and the one before it."""
    return [(s, list(g)) for s, g in soak.schedule if bar - 1 <= s <= bar]


def _order_text(soak, ref, cid=None):
    rec = soak.run_.rec
    bar, kind, side, size = rec.created.get(ref, (None, '?', '?', None))
    seen = rec.seen.get(ref, {})
    return ('order ref %s cid %s (%s %s %s, live bar %s; told %s%s; faults then: %s)'
            % (ref, cid or seen.get('cid'), kind, side, size, bar, seen.get('statuses'),
               ', reason %r' % seen['reason'] if seen.get('reason') else '',
               _around(soak, bar) if bar is not None else '-'))


def check_bars(soak):
    rec, sim = soak.run_.rec, soak.sim
    times = [_ms(b[0]) for b in rec.bars]
    expected = soak.bars + soak.backfill
    if len(times) != expected:
        soak.fail('bars', '%d bars seen, %d expected' % (len(times), expected))
    if times != sorted(set(times)):
        dup = [t for t, n in collections.Counter(times).items() if n > 1]
        soak.fail('bars', 'a bar twice or out of order (repeated: %s)' % dup)
        return
    if times and times != closed_bar_times(sim, times[0], times[-1]):
        missing = sorted(set(closed_bar_times(sim, times[0], times[-1])) - set(times))
        soak.fail('bars', 'closed bar(s) missing: %s' % missing)


def _exchange(soak):
    v, sim = soak.v, soak.sim
    orders = [o for o in sim.orders(market=v.market, symbol=v.symbol)
              if o.client_id.startswith('btl')]
    trades = sim.trades(market=v.market, symbol=v.symbol)
    return orders, trades


def check_orders(soak, died=False):
    """Orders: none lost, none twice, same final status. Returns {cid: order}."""
    rec = soak.run_.rec
    orders, _ = _exchange(soak)
    soak.exchange_orders = len(orders)
    counts = collections.Counter(o.client_id for o in orders)
    for cid, n in counts.items():
        if n > 1:
            soak.fail('order duplicated', 'client id %s placed %d times' % (cid, n))
    by_cid = {o.client_id: o for o in orders}
    ref_of = {s['cid']: ref for ref, s in rec.seen.items() if s['cid']}
    for ref in rec.created:
        if ref not in rec.seen:
            soak.fail('order lost', 'never notified: ' + _order_text(soak, ref))
    for cid, order in by_cid.items():
        ref = ref_of.get(cid)
        if ref is None:
            soak.fail('order lost', 'the exchange has %s (%s %s %s, %s) the strategy never '
                      'heard of' % (cid, order.type, order.side, order.qty, order.status))
            continue
        last = rec.seen[ref]['statuses'][-1]
        if last not in SAYS.get(soak.v.exchange, {}).get(order.status, FINAL[order.status]):
            soak.fail('order status', 'exchange %s, strategy %s: %s'
                      % (order.status, last, _order_text(soak, ref, cid)))
        if order.is_open and not died:
            soak.fail('order left open', 'after the final cancels: %s'
                      % _order_text(soak, ref, cid))
    for cid, ref in ref_of.items():
        statuses = rec.seen[ref]['statuses']
        if statuses[-1] == 'Submitted' and not died:
            soak.fail('order unresolved', 'still Submitted at the end: '
                      + _order_text(soak, ref, cid))
        elif cid not in by_cid and statuses[-1] != 'Rejected':
            soak.fail('order lost', 'told %s, but the exchange has no such order: %s'
                      % (statuses[-1], _order_text(soak, ref, cid)))
    return by_cid


def check_fills(soak, by_cid):
    rec, v = soak.run_.rec, soak.v
    _, trades = _exchange(soak)
    per_order = collections.defaultdict(list)
    for t in trades:
        per_order[t.order_id].append(t)
    ids = collections.Counter(t.id for t in trades)
    if any(n > 1 for n in ids.values()):
        soak.fail('fill duplicated', 'trade ids repeated on the exchange: %s'
                  % [i for i, n in ids.items() if n > 1])
    ref_of = {s['cid']: ref for ref, s in rec.seen.items() if s['cid']}
    for cid, order in by_cid.items():
        ref = ref_of.get(cid)
        if ref is None:
            continue        # reported as a lost order
        told = rec.seen[ref]['fills']
        theirs = per_order.get(order.id, [])
        base = v.symbol.split('/')[0]
        sizes = sorted(float(t.qty - (t.commission if v.spot and t.side == 'BUY'
                                      and t.commission_asset == base else 0)) for t in theirs)
        ours = sorted(abs(s) for s, _ in told)
        what = _order_text(soak, ref, cid)
        if len(ours) != len(sizes):
            kind = 'fill lost' if len(ours) < len(sizes) else 'fill duplicated'
            soak.fail(kind, 'exchange %d trade(s) %s, strategy told %d %s: %s'
                      % (len(sizes), sizes, len(ours), ours, what))
        elif not _sizes_match(soak, ours, sizes):
            soak.fail('fill size', 'exchange %s, strategy %s: %s' % (sizes, ours, what))
        else:
            prices = sorted(float(t.price) for t in theirs)
            told_prices = sorted(p for _, p in told)
            if any(abs(a - b) > TOL * b for a, b in zip(told_prices, prices)):
                soak.fail('fill price', 'exchange %s, strategy %s: %s'
                          % (prices, told_prices, what))


def _sizes_match(soak, ours, theirs):
    """Equal sizes; on spot a fill that empties the position may also take
    the dust below one step that fees in the coin left (accounts.settle_dust,
    docs/live-trading.md): the coin stays in the balance, counted in
    ``soak.dust``."""
    step = float(soak.v.step)
    for a, b in zip(ours, theirs):
        if abs(a - b) <= TOL * max(1.0, b):
            continue
        if not (soak.v.spot and 0 < a - b < step):
            return False
        soak.dust += a - b
    return True


def exchange_position(soak):
    """The exchange's position (Decimal): coins held on spot, the signed
    contract position on futures."""
    v, sim = soak.v, soak.sim
    if v.spot:
        held = sim.balances(market='spot').get(v.symbol.split('/')[0], {})
        return held.get('free', 0) + held.get('locked', 0)
    sid = sim._sid(v.symbol)
    return sum((p.size for p in sim.positions(market=v.market) if p.symbol == sid), 0)


def check_position(soak):
    v = soak.v
    ours = soak.run_.rec.strategy.position.size
    theirs = exchange_position(soak)
    held = float(theirs) - soak.dust          # spot: less the dust swept by closes
    if theirs == 0 and ours != 0:
        soak.fail('position', 'the exchange is flat, the strategy holds %r' % ours)
    elif abs(ours - held) > float(v.step) * 1e-6:
        soak.fail('position', 'strategy %r, exchange %s (%s of it dust swept by closes)'
                  % (ours, theirs, soak.dust))
    # The last live bar cancelled everything and closed: flat, exactly (spot:
    # but for the dust in the balance).
    if ours != 0 or abs(held) > float(v.step) * 1e-6:
        soak.fail('position', 'close() on the final bar left %s open on the exchange '
                  '(strategy %r); final orders: %s' % (theirs, ours, _final_orders(soak)))


def _final_orders(soak):
    rec = soak.run_.rec
    last = soak.bars - 2
    return [_order_text(soak, ref) for ref, c in rec.created.items()
            if c[0] >= last - 3 and (c[0] == last or rec.seen.get(ref, {}).get('fills'))]
