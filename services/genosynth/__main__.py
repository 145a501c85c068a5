from genosynth.cli import main

main()
