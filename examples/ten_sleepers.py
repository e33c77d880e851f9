"""Ten processes that sleep, joined one by one: the parent blocks in join() until each ends.

    python examples/ten_sleepers.py [fork|forkserver|spawn] [SECONDS]

It prints how long each join() blocked and the total, as the script itself measures them.
"""

import multiprocessing
import sys
import time


def sleeper(seconds: float) -> None:
    print(f"{multiprocessing.current_process().name} sleeps {seconds} s", flush=True)
    time.sleep(seconds)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    began = time.perf_counter()
    processes = [multiprocessing.Process(target=sleeper, args=(seconds,)) for _ in range(10)]
    for p in processes:
        p.start()
    for p in processes:
        called = time.perf_counter()
        p.join()
        blocked = time.perf_counter() - called
        print(f"joined {p.name} pid {p.pid} exit {p.exitcode}: blocked {blocked:.6f} s")
    print(f"all ten done in {time.perf_counter() - began:.3f} s")
