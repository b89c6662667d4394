"""python -m fastconv {demo, bench, config}: the command-line entry points."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastconv",
        description="fastconv: fast CPU convolution for NumPy users, with PyTorch semantics.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", add_help=False,
                        help="train a small ConvNet on 8x8 digits (python -m fastconv demo --help)")
    commands.add_parser("bench", add_help=False,
                        help="fastconv beside PyTorch / ONNX Runtime / NumPy on the standard "
                             "layers (python -m fastconv bench --help)")
    commands.add_parser("config", help="print the build and run-time configuration")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from fastconv import _bench
        return _bench.main(rest)
    if args.command == "demo":
        from fastconv import _demo
        return _demo.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "config":
        import fastconv
        fastconv.show_config()
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
