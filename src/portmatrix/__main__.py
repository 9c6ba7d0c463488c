from portmatrix.cli import main

main()
