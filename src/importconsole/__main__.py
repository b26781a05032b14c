from importconsole.cli import main

raise SystemExit(main())
