from cgankd.cli import main

raise SystemExit(main())
