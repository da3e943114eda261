"""Questions about the bundled sample article, in English and German: what the API and bot benchmarks ask."""

QUESTIONS = [
    "When does Putin land in Alaska?",
    "Wann landet Putin in Alaska?",
    "When does the summit in Anchorage begin?",
    "Wann beginnt der Gipfel in Anchorage?",
    "How many political prisoners are there in Belarus?",
    "Mit wem telefonierte Trump vor dem Gipfel?",
]
