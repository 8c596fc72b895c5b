"""The hnswlib side of Benchmarks/vector-vs-hnswlib, and the data both sides share.

    python hnswlib_side.py generate DIR          # 100k random 128-d vectors + 1000 queries (seeded)
    python hnswlib_side.py truth DIR NAME        # exact top-10 by L2 for DIR/NAME.base / NAME.query (numpy)
    python hnswlib_side.py run DIR NAME EFS      # build + search with hnswlib, one thread, same M and ef_construction

Files: little-endian int32 count, int32 dimensions, then count*dimensions float32 (truth: int32 ids).
"""
import sys
import time

import numpy as np

M, EF_CONSTRUCTION, K = 16, 200, 10


def write(path, array):
    array = np.ascontiguousarray(array)
    with open(path, "wb") as handle:
        np.array(array.shape, dtype="<i4").tofile(handle)
        array.astype("<f4" if array.dtype.kind == "f" else "<i4").tofile(handle)


def read(path, dtype="<f4"):
    with open(path, "rb") as handle:
        count, dims = np.fromfile(handle, dtype="<i4", count=2)
        return np.fromfile(handle, dtype=dtype, count=count * dims).reshape(count, dims)


def generate(directory):
    rng = np.random.default_rng(20261125)
    write(f"{directory}/random.base", rng.random((100_000, 128), dtype=np.float32))
    write(f"{directory}/random.query", rng.random((1_000, 128), dtype=np.float32))


def truth(directory, name):
    base, queries = read(f"{directory}/{name}.base"), read(f"{directory}/{name}.query")
    norms = (base * base).sum(axis=1)
    ids = []
    for start in range(0, len(queries), 100):
        q = queries[start:start + 100]
        distances = norms[None, :] - 2 * q @ base.T
        ids.append(np.argsort(distances, axis=1)[:, :K])
    write(f"{directory}/{name}.truth", np.vstack(ids).astype(np.int32))


def run(directory, name, efs):
    import hnswlib
    base, queries = read(f"{directory}/{name}.base"), read(f"{directory}/{name}.query")
    truth_ids = read(f"{directory}/{name}.truth", dtype="<i4")
    index = hnswlib.Index(space="l2", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION, random_seed=42)
    index.set_num_threads(1)
    started = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=1)
    print(f"RESULT hnswlib {name} build_seconds={time.perf_counter() - started:.2f}")
    for ef in efs:
        index.set_ef(ef)
        hits = 0
        started = time.perf_counter()
        for i, query in enumerate(queries):      # one query per call, as the Swift side does
            labels, _ = index.knn_query(query, k=K, num_threads=1)
            hits += len(set(labels[0]) & set(truth_ids[i]))
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        labels, _ = index.knn_query(queries, k=K, num_threads=1)          # one batch call: no Python per query
        batch = time.perf_counter() - started
        batch_hits = sum(len(set(labels[i]) & set(truth_ids[i])) for i in range(len(queries)))
        print(f"RESULT hnswlib {name} ef={ef} recall={hits / (len(queries) * K):.4f} qps={len(queries) / elapsed:.0f} "
              f"batch_recall={batch_hits / (len(queries) * K):.4f} batch_qps={len(queries) / batch:.0f}")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "generate":
        generate(sys.argv[2])
    elif command == "truth":
        truth(sys.argv[2], sys.argv[3])
    else:
        run(sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split(",")])
