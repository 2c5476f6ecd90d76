from neuralcodec.cli import main

raise SystemExit(main())
