#!/usr/bin/env python
from ops.cli import main

if __name__ == "__main__":
    main()
