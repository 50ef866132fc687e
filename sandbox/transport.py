import requests


def sandbox_session() -> requests.Session:  # replaced by the sandbox issue
    return requests.Session()
