"""``python -m gbl_jax.cli``: the gbl-jax command."""

from gbl_jax.cli.main import main

raise SystemExit(main())
