"""``python -m fedsim.cli``: the same command as the ``fedsim`` script."""

from fedsim.cli import main

main()
