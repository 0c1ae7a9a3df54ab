"""Standard SPARQL and GraphQL clients, used as their documentation shows, against assetkg.

Run by scripts/real-clients.sh with the server URL and a reader's and a curator's token.
Every check prints one line; the first failure raises and the script exits non-zero.
"""

import sys

from gql import Client, gql
from gql.transport.requests import RequestsHTTPTransport
from rdflib import Graph, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, POST, TURTLE, SPARQLWrapper

url, reader_token, curator_token = sys.argv[1:4]
endpoint = f"{url}/sparql"
VIBRATION = "https://w3id.org/assetkg/kb/sensor/vibration"


def check(label, condition, detail=""):
    if not condition:
        raise SystemExit(f"FAIL {label} {detail}")
    print(f"ok   {label}")


# --- SPARQLWrapper: SELECT (JSON), ASK, CONSTRUCT (Turtle), UPDATE with a bearer token ---------
sparql = SPARQLWrapper(endpoint)
sparql.setQuery("""
    PREFIX akg: <https://w3id.org/assetkg/ontology#>
    PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
    SELECT ?sensor ?label WHERE { ?sensor a akg:Sensor ; skos:prefLabel ?label } ORDER BY ?label""")
sparql.setReturnFormat(JSON)
rows = sparql.queryAndConvert()["results"]["bindings"]
check("SPARQLWrapper SELECT returns the sensors", len(rows) > 40, f"({len(rows)} rows)")

sparql.setQuery(f"ASK {{ <{VIBRATION}> a <https://w3id.org/assetkg/ontology#Sensor> }}")
check("SPARQLWrapper ASK", sparql.queryAndConvert()["boolean"] is True)

sparql.setQuery(f"CONSTRUCT {{ <{VIBRATION}> ?p ?o }} WHERE {{ <{VIBRATION}> ?p ?o }}")
sparql.setReturnFormat(TURTLE)
turtle = sparql.queryAndConvert()
graph = Graph().parse(data=turtle, format="turtle")
check("SPARQLWrapper CONSTRUCT parses as Turtle in rdflib", len(graph) > 3, f"({len(graph)} triples)")

update = SPARQLWrapper(endpoint, updateEndpoint=endpoint)
update.setMethod(POST)
update.addCustomHttpHeader("Authorization", f"Bearer {curator_token}")
update.setQuery(f'INSERT DATA {{ <{VIBRATION}> <http://www.w3.org/2004/02/skos/core#altLabel> "client test label"@en }}')
update.query()
sparql.setReturnFormat(JSON)
sparql.setQuery(f'ASK {{ <{VIBRATION}> <http://www.w3.org/2004/02/skos/core#altLabel> "client test label"@en }}')
check("SPARQLWrapper UPDATE by a curator is visible", sparql.queryAndConvert()["boolean"] is True)

refused = SPARQLWrapper(endpoint, updateEndpoint=endpoint)
refused.setMethod(POST)
refused.addCustomHttpHeader("Authorization", f"Bearer {reader_token}")
refused.setQuery('INSERT DATA { <urn:x> <urn:y> "z" }')
try:
    refused.query()
    check("SPARQLWrapper UPDATE by a reader is refused", False)
except Exception as error:  # SPARQLWrapper raises its own HTTP error classes
    check("SPARQLWrapper UPDATE by a reader is refused", "403" in str(error) or "Forbidden" in str(error), str(error))

# --- rdflib: the endpoint as a read-only SPARQLStore -------------------------------------------
store_graph = Graph(store=SPARQLStore(endpoint, returnFormat="json"))
labels = list(store_graph.objects(URIRef(VIBRATION), URIRef("http://www.w3.org/2004/02/skos/core#prefLabel")))
check("rdflib SPARQLStore reads a label", [str(label) for label in labels] == ["vibration"], str(labels))
result = store_graph.query("SELECT (COUNT(*) AS ?n) WHERE { ?s a <https://w3id.org/assetkg/ontology#FailureMode> }")
count = int(next(iter(result))[0])
check("rdflib SPARQLStore aggregate query", count > 20, f"({count} failure modes)")

# --- gql: introspect the schema, then validated queries and a mutation --------------------------
def client(token):
    transport = RequestsHTTPTransport(url=f"{url}/graphql", headers={"Authorization": f"Bearer {token}"})
    return Client(transport=transport, fetch_schema_from_transport=True)


with client(reader_token) as session:
    found = session.execute(gql("""
        query Search($text: String!) {
          search(text: $text, kinds: [SENSOR], mode: HYBRID, limit: 5) { score entity { iri label } }
        }"""), variable_values={"text": "bearing wear"})
    check("gql search (validated against the introspected schema)", len(found["search"]) == 5)

    recommended = session.execute(gql("""
        { recommend(task: FM2S, query: "bearing wear", asset: "Electric Motor", limit: 5) {
            items { score graphLinked entity { label } explanation { summary } } } }"""))
    items = recommended["recommend"]["items"]
    check("gql recommend with explanations", len(items) == 5 and all(i["explanation"]["summary"] for i in items))

    page = session.execute(gql("{ entities(kind: FAILURE_MODE, first: 3) { pageInfo { hasNextPage endCursor } edges { node { iri } } } }"))
    check("gql cursor pagination", page["entities"]["pageInfo"]["hasNextPage"] and len(page["entities"]["edges"]) == 3)

# A sensor not yet linked to bearing wear, found with SPARQLWrapper.
sparql.setReturnFormat(JSON)
sparql.setQuery("""PREFIX akg: <https://w3id.org/assetkg/ontology#>
    SELECT ?s WHERE { ?s a akg:Sensor FILTER NOT EXISTS {
      <https://w3id.org/assetkg/kb/failure-mode/bearing-wear> akg:detectableBy ?s } } ORDER BY ?s LIMIT 1""")
unlinked = sparql.queryAndConvert()["results"]["bindings"][0]["s"]["value"]

with client(curator_token) as session:
    edit = session.execute(gql("""
        mutation Propose($object: String!) { proposeRelation(fact: { subject: "fm:bearing-wear",
            predicate: "akg:detectableBy", object: $object, reason: "real-clients script" }) {
            kbVersion previousVersion } }"""), variable_values={"object": unlinked})
    check("gql mutation by a curator", edit["proposeRelation"]["kbVersion"] != edit["proposeRelation"]["previousVersion"])

print("all client checks passed")
