"""A Python program that runs other programs with subprocess: their output goes where
the parent's does, unless the parent captures it.

    python examples/run_program.py
"""

import subprocess
import sys

if __name__ == "__main__":
    subprocess.run(["echo", "a line from echo"], check=True)
    status = subprocess.run(["sh", "-c", "exit 3"]).returncode
    print(f"sh exited with {status}")
    captured = subprocess.run(
        [sys.executable, "-c", "print('a line the parent captures')"],
        capture_output=True,
        text=True,
    ).stdout
    print(f"the child said: {captured.strip()}")
    subprocess.run([sys.executable, "-c", "print('a line from a Python child')"], check=True)
