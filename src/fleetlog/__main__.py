from fleetlog.cli.main import main

main()
