from lims.cli.app import main

main()
