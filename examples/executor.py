"""concurrent.futures' ProcessPoolExecutor: one task per call, then calls in chunks.

python examples/executor.py [fork|forkserver|spawn]
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor


def cube(n: int) -> int:
    return n * n * n


if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1] if len(sys.argv) > 1 else None)
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        one_by_one = list(executor.map(cube, range(20)))
        chunked = list(executor.map(cube, range(100), chunksize=25))
    print(f"{len(one_by_one)} cubes one by one, {len(chunked)} in chunks: {sum(chunked)}")
