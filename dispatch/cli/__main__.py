"""``python -m dispatch.cli`` runs the ``xianghu`` command."""

from dispatch.cli.command import main

main()
