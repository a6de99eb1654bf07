from indexer.warm.client import main

main()
