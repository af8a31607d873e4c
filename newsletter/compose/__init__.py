"""The way in of an issue: YAML file -> validated Issue -> MJML -> HTML + text; lint; publish.

    yamlsource (YAML with lines) -> schema, issue (validated Issue) -> render (HTML + text)
    -> lint (what `check` reports) -> publish (build folder, web version); prepare ties
    render and lint together for every command that sends.
"""
