"""``python -m gbl_jax.cli.main``: the gbl-jax command."""

from gbl_jax.cli.main.main import main

raise SystemExit(main())
