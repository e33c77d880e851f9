"""The lesson's file (day 36): a task, and the `__main__` block that starts it.

python examples/day36.py                   # the lesson as written: one child, not joined
proclab run examples/day36.py:task --count 10
proclab watch examples/day36.py
"""

import time
from multiprocessing import Process


def task(name: str = "jerry", age: int = 20, gender: str = "male") -> None:
    print(name, age, gender)
    time.sleep(3)
    print("the child's code")


if __name__ == "__main__":  # on Windows, a process may only be started in here
    p = Process(
        target=task, name="process-2", kwargs={"name": "jerry", "age": 20, "gender": "male"}
    )
    p.start()  # the child really starts here
    print("the parent's code")
