from mailconf.cli import main

main()
