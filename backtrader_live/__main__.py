"""``python -m backtrader_live ...``: the command line (backtrader_live/cli)."""
from backtrader_live.cli import main

if __name__ == '__main__':
    main()
