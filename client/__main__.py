from client.commands import main

main()
