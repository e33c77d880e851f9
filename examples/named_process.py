"""A named Process with keyword arguments, a join() that times out, then terminate and kill.

python examples/named_process.py [fork|forkserver|spawn]
"""

import multiprocessing
import sys
import time


def greet(greeting: str, *, who: str, times: int) -> None:
    for _ in range(times):
        print(f"{greeting}, {who}!", flush=True)


def linger(seconds: float) -> None:
    print(f"{multiprocessing.current_process().name} lingers for {seconds} s", flush=True)
    time.sleep(seconds)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        multiprocessing.set_start_method(sys.argv[1])
    greeter = multiprocessing.Process(
        target=greet, name="greeter", args=("Hello",), kwargs={"who": "world", "times": 3}
    )
    greeter.start()
    greeter.join()
    print(f"greeter exit {greeter.exitcode}")

    slow = multiprocessing.Process(target=linger, name="slowpoke", args=(30,), daemon=True)
    slow.start()
    called = time.perf_counter()
    slow.join(timeout=0.5)  # gives up: slowpoke is still sleeping
    print(
        f"join(timeout=0.5) on slowpoke blocked {time.perf_counter() - called:.6f} s, alive {slow.is_alive()}"
    )
    slow.terminate()
    slow.join()
    print(f"slowpoke exit {slow.exitcode}")

    stuck = multiprocessing.Process(target=linger, name="stuck", args=(30,))
    stuck.start()
    stuck.kill()
    stuck.join()
    print(f"stuck exit {stuck.exitcode}")
