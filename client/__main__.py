from client import run

run()
