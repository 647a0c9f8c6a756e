from fluxwatch.cli import main

raise SystemExit(main())
