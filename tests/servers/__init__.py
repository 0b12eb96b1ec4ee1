"""Servers the tests start as real processes (Redis, PostgreSQL ...), each in its own process
group, on 127.0.0.1 and a free port, in a temporary directory; stopped by the code that started
them. Not test modules: imported by the fixtures of the directories that need them.
"""
