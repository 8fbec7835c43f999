"""Bitwise comparison of two fit files (docs/output-files.md#fit-file) for the SLURM tests.

python3 fit_files.py A.h5 B.h5: exit 0 when every dataset and every result attribute is
identical, bit for bit (NaN equal to NaN); 1 naming what differs. Left out: what records how
and when a fit ran rather than what it computed — /timing, /config (the command line's
options: --restart, --checkpoint-every), /trace/seconds, and the provenance attributes.
"""
import sys

import h5py
import numpy as np

SKIPPED_GROUPS = ("timing", "config")
SKIPPED_DATASETS = ("trace/seconds",)
RESULT_ATTRIBUTES = ("elbo", "elbo_per_spike", "evidence_laplace", "spike_count", "termination",
                     "observation", "family", "expectations")


def datasets(f):
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(n for n in names
                  if n.split("/")[0] not in SKIPPED_GROUPS and n not in SKIPPED_DATASETS)


def main(a_path, b_path):
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        names_a, names_b = datasets(a), datasets(b)
        bad = [f"only in one file: {n}" for n in sorted(set(names_a) ^ set(names_b))]
        for name in sorted(set(names_a) & set(names_b)):
            x, y = np.asarray(a[name][()]), np.asarray(b[name][()])
            if x.shape != y.shape or x.dtype != y.dtype:
                bad.append(f"{name} (shape/type)")
            elif x.dtype.kind == "f":
                if not np.array_equal(x.view(np.uint8), y.view(np.uint8)):
                    bad.append(name)
            elif not np.array_equal(x, y):
                bad.append(name)
        for key in RESULT_ATTRIBUTES:
            if (key in a.attrs) != (key in b.attrs) or (
                    key in a.attrs and not np.array_equal(a.attrs[key], b.attrs[key])):
                bad.append(f"attribute {key}")
        if bad:
            print("differ: " + ", ".join(bad))
            return 1
        print(f"{len(names_a)} datasets and the result attributes are bitwise equal")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
