from .cli import before_exit, main

code = main()
before_exit()
raise SystemExit(code)
