"""A Pool of workers maps a function over many numbers, in chunks.

python examples/pool_map.py [fork|forkserver|spawn] [COUNT]
"""

import multiprocessing
import sys


def square(n: int) -> int:
    return n * n


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    pool = multiprocessing.Pool(2)
    results = pool.map(square, range(count))
    pool.close()  # no more work: the workers end once the queue is empty
    pool.join()
    print(f"sum of {len(results)} squares: {sum(results)}")
