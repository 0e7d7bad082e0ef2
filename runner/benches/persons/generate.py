#!/usr/bin/env python3
"""A census-style person workload with ground truth, as Kith canonical observations.

A population lives in households (one to six people: couples, children,
twins, fathers and sons of the same name, grandparents, room-mates), and three
agencies hold records of it, each with its own columns and habits:

  census    given_name, middle_name (sometimes), surname, suffix,
            date_of_birth (YYYY-MM-DD), street_number, street, city, state,
            zip; identifier phone
  tax       given_name, surname, mailing address (street_number, street, city,
            state, zip), all in upper case as a legacy system keeps them;
            identifier ssn; no date of birth
  benefits  given_name, surname, date_of_birth (MM/DD/YYYY); identifiers ssn
            and phone; no address

Every person is in one to three sources, sometimes twice in one. Records
carry the damage real files have: nicknames, other spellings of the same
sound, typing and OCR errors, day and month swapped, a birth year off by one,
missing fields, placeholder names, borrowed and mistyped SSNs, and a newer
address for people who moved. README.md beside this file gives the rates.

Standard library only, and deterministic: the same --people and --seed give
byte-identical files, and --no-ssn gives the same records without SSNs (the
damage is drawn first, the SSNs are left out only when writing).

    python generate.py --people 20000 --seed 1 \\
        --output persons.jsonl --truth persons-truth.jsonl

One observation per line, in a seeded random order across the sources:

    {"source":"census","id":"c-000123","ts":"2021-06-14T00:00:00Z","kind":"person",
     "identifiers":[{"type":"phone","value":"+14155820100"}],
     "attributes":{"given_name":"Bob","surname":"Smith","date_of_birth":"1970-03-05",...}}

and one truth line per record, sorted by source and id:

    {"source":"census","id":"c-000123","kind":"person","entity":"p-000042"}

A missing value is left out (never an empty string), and so is an identifier
a record lacks. Statistics go to stderr.
"""

import argparse
import bisect
import datetime
import json
import random
import sys

# ---------------------------------------------------------------------------
# Reference tables. Names are listed most common first; weights fall with the
# rank (see `rank_weights`) roughly as Social Security and Census counts do.
# ---------------------------------------------------------------------------

MALE_NAMES = """
James Robert John Michael David William Richard Joseph Thomas Charles
Christopher Daniel Matthew Anthony Mark Donald Steven Paul Andrew Joshua
Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob Gary
Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel
Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam
Nathan Henry Douglas Zachary Peter Kyle Ethan Walter Noah Jeremy Christian
Keith Roger Terry Gerald Harold Sean Austin Carl Arthur Lawrence Dylan Jesse
Jordan Bryan Billy Joe Bruce Gabriel Logan Albert Willie Alan Juan Wayne Elijah
Randy Roy Vincent Ralph Eugene Russell Bobby Mason Philip Louis Harry Howard
Fred Ernest Martin Craig Stanley Shawn Travis Bradley Leonard Earl Francis Todd
Curtis Dale Luis Carlos Allen Marvin Glenn Chad Victor Clarence Derek Tony
Jimmy Johnny Rodney Shane Caleb Luke Isaac Hunter Evan Ian Connor Jared Marcus
Antonio Cody Miguel Manuel Jorge Troy Jerome Leroy Ricky Mario Edwin Barry
Norman Lloyd Gordon Ray Herbert Warren Eddie Marc Theodore Oscar Calvin Lewis
Mitchell Dustin Derrick Jay Jon Erik Javier Ronnie Tommy Oliver Liam Lucas
Owen Wyatt Julian Levi Carter Landon Cameron Chase Hector Omar Ramon Sergio
Andre Darnell Tyrone Malik Xavier Wei Minh Raj Mohammed Frederick
""".split()

FEMALE_NAMES = """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa
Nancy Betty Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda
Dorothy Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy
Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha Katherine
Christine Debra Rachel Carolyn Janet Catherine Maria Heather Diane Ruth Julie
Olivia Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn Judith Megan
Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison Frances
Kathryn Janice Jean Abigail Alice Judy Sophia Grace Denise Amber Doris Marilyn
Danielle Beverly Isabella Theresa Diana Natalie Brittany Charlotte Marie Kayla
Alexis Lori Tiffany Kristen Erin Crystal Tammy Dawn Rose Wanda Lillian Joanne
Tina Mildred Phyllis Peggy Connie Sally Sylvia Norma Marjorie Vanessa Holly
Leah Jasmine Allison Courtney Kristin Erica Monica Yolanda Ana Rosa Carmen
Gabriela Lucia Mia Ava Chloe Zoe Lily Layla Aria Ella Avery Harper Scarlett
Nora Hazel Aurora Ellie Stella Penelope Riley Camila Savannah Brooklyn Claire
Lucy Naomi Ruby Jade Valerie Eleanor Bonnie Loretta Rita Vera Edna Ethel Agnes
Irene Lois Jane Kathy Cindy Wendy Tracy Stacy April Melanie Whitney Caitlin
Lindsey Kelsey Chelsea Alyssa Meghan Shannon Jill Robin Sheila Gail Geraldine
Josephine Annie Elaine Marsha Rhonda Tonya Keisha Latoya Mei Linh Priya Fatima
Guadalupe Alejandra Yesenia Alexandra Suzanne Abby Jo Molly
""".split()

# Approximate 2010 Census counts of the 50 most common surnames (thousands).
TOP_SURNAMES = [
    ("Smith", 2443), ("Johnson", 1933), ("Williams", 1625), ("Brown", 1437),
    ("Jones", 1425), ("Garcia", 1166), ("Miller", 1161), ("Davis", 1116),
    ("Rodriguez", 1095), ("Martinez", 1060), ("Hernandez", 1043), ("Lopez", 875),
    ("Gonzalez", 841), ("Wilson", 802), ("Anderson", 784), ("Thomas", 756),
    ("Taylor", 751), ("Moore", 724), ("Jackson", 708), ("Martin", 703),
    ("Lee", 693), ("Perez", 682), ("Thompson", 665), ("White", 660),
    ("Harris", 624), ("Sanchez", 613), ("Clark", 563), ("Ramirez", 557),
    ("Lewis", 532), ("Robinson", 530), ("Walker", 523), ("Young", 484),
    ("Allen", 483), ("King", 465), ("Wright", 459), ("Scott", 440),
    ("Torres", 438), ("Nguyen", 438), ("Hill", 435), ("Flores", 434),
    ("Green", 430), ("Adams", 428), ("Nelson", 425), ("Baker", 420),
    ("Hall", 407), ("Rivera", 391), ("Campbell", 386), ("Mitchell", 384),
    ("Carter", 377), ("Roberts", 377),
]

# Ranks 51 on, most common first (their weights continue the curve).
MORE_SURNAMES = """
Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart
Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey
Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James
Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long
Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson
Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant
Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall
Owens Harrison Fernandez Mcdonald Woods Washington Kennedy Wells Vargas Henry
Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon
Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza
Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn
Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley
Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews
Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards
Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios
Estrada Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago
Maldonado Morrison Franklin Carlson Austin Dominguez Carr Lawson Jacobs Obrien
Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson Gilbert Dean
Sims Espinoza Howell Li Wong Reid Hanson Le Mccoy Garrett Burton Fuller Wang
Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks Padilla Day Walsh
Bowman Schultz Luna Fowler Mejia Davidson Acosta Brewer May Holland Juarez
Newman Pearson Curtis Cortez Douglas Schneider Joseph Barrett Navarro Figueroa
Keller Avila Wade Molina Stanley Hopkins Campos Barnett Bates Chambers Caldwell
Beck Lambert Miranda Byrd Craig Ayala Lowe Frazier Powers Neal Leonard Gregory
Carrillo Sutton Fleming Rhodes Shelton Schwartz Norris Jennings Watts Duran
Walters Cohen Mcdaniel Moran Parks Steele Vaughn Becker Holt Deleon Barker Terry
Hale Leon Benson Haynes Horton Miles Lyons Pham Graves Bush Thornton Wolfe
Warner Cabrera Mckinney Mann Zimmerman Dawson Lara Fletcher Page Mccarthy Love
Robles Cervantes Solis Erickson Reeves Chang Klein Salinas Fuentes Baldwin
Daniel Simon Velasquez Hardy Higgins Aguirre Lin Cummings Chandler Sharp Barber
Bowen Ochoa Dennis Robbins Liu Ramsey Francis Griffith Paul Blair Oconnor
Cardenas Pacheco Cross Calderon Quinn Moss Swanson Chan Rivas Khan Rodgers
Serrano Fitzgerald Rosales Stevenson Christensen Manning Gill Curry Mclaughlin
Harmon Mcgee Gross Doyle Garner Newton Burgess Reese Walton Blake Trujillo
Adkins Brady Goodman Roman Webster Goodwin Fischer Huang Potter Delacruz
Montoya Todd Wu Hines Mullins Castaneda Malone Cannon Tate Mack Sherman Hubbard
Hodges Zhang Guerra Wolf Valencia Saunders Franco Rowe Gallagher Farmer Hammond
Hampton Townsend Ingram Wise Gallegos Clarke Barton Schroeder Maxwell Waters
Logan Camacho Strickland Norman Person Colon Parsons Frank Harrington Glover
Osborne Buchanan Casey Floyd Patton Ibarra Ball Tyler Suarez Bowers Orozco
Salas Cobb Gibbs Andrade Bauer Conner Moody Escobar Mcguire Lloyd Mueller
Hartman French Kramer Mcbride Pope Lindsey Velazquez Norton Mccormick Sparks
Flynn Yates Hogan Marsh Macias Villanueva Zamora Pratt Stokes Owen Ballard
Lang Brock Villarreal Charles Drake Barrera Cain Patrick Pineda Burnett Mercado
Santana Shepherd Bautista Ali Shaffer Lamb Trevino Mckenzie Hess Olsen
Cochran Morton Nash Wilkins Petersen Briggs Shah Roth Nicholson Holloway
Lozano Rangel Flowers Hoover Short Arias Mora Valenzuela Bryan Meyers Weiss
Underwood Bass Greer Summers Houston Carson Morrow Clayton Whitaker Decker
Yoder Collier Zuniga Carey Wilcox Melendez Poole Roberson Larsen Conley Davenport
Copeland Massey Lam Huff Rocha Cameron Jefferson Hood Monroe Anthony Pittman
Huynh Randall Singleton Kirk Combs Mathis Christian Skinner Bradford Richard
Galvan Wall Boone Kirby Wilkinson Bridges Bruce Atkinson Velez Meza Roy Vincent
York Hodge Villa Abbott Allison Tapia Gates Chase Sosa Sweeney Farrell Wyatt
Dalton Horn Barron Phelps Yu Dickerson Heath Foley Atkins Mathews Bonilla Acevedo
Benitez Zavala Hensley Glenn Cisneros Harrell Shields Rubio Choi Huffman Boyer
Garrison Arroyo Bond Kane Hancock Callahan Dillon Cline Wiggins Grimes Arellano
Melton Oneill Savage Ho Beltran Pitts Parrish Ponce Rich Booth Koch Golden Ware
Brennan Mcdowell Marks Cantu Humphrey Baxter Sawyer Clay Tanner Hutchinson Kaur
Berg Wiley Gilmore Russo Villegas Hobbs Keith Wilkerson Ahmed Beard Mcclain
Montes Mata Rosario Vang Walter Henson Oneal Mosley Mcclure Beasley Stephenson
Snow Huerta Preston Vance Barry Johns Eaton Blackwell Dyer Prince Macdonald
Solomon Guevara Stafford English Hurst Woodard Cortes Shannon Kemp Nolan Mccullough
Merritt Murillo Moon Salgado Strong Kline Cordova Barajas Roach Rosas Winters
Jacobson Lester Knox Bullock Kerr Leach Meadows Orr Davila Whitehead Pruitt Kent
Conway Mckee Barr David Dejesus Marin Berger Mcintyre Blankenship Gaines Palacios
Cuevas Bartlett Durham Dorsey Mccall Odonnell Stein Browning Stout Lowery Sloan
Mclean Hendricks Calhoun Sexton Chung Gentry Hull Duarte Ellison Nielsen Gillespie
Buck Middleton Sellers Leblanc Esparza Hardin Bradshaw Mcintosh Howe Livingston
Frost Glass Morse Knapp Herman Stark Bravo Noble Spears Weeks Corona Frederick
Buckley Mcfarland Hebert Enriquez Hickman Quintero Randolph Schaefer Walls
Trejo House Reilly Pennington Michael Conrad Giles Benjamin Crosby Fitzpatrick
Donovan Mays Mahoney Valentine Raymond Medrano Hahn Mcmillan Small Bentley Felix
Peck Lucero Boyle Hanna Pace Rush Hurley Harding Mcconnell Bernal Nava Ayers
Everett Ventura Avery Pugh Mayer Bender Shepard Mcmahon Landry Case Sampson
Moses Magana Blackburn Dunlap Gould Duffy Vaughan Herring Mckay Espinosa Rivers
Farley Bernard Ashley Friedman Potts Truong Costa Correa Blevins Nixon Clements
Fry Delarosa Best Benton Lugo Portillo Dougherty Crane Haley Phan Villalobos
Blanchard Horne Finley Quintana Lynn Esquivel Bean Dodson Mullen Xiong Hayden
Cano Levy Huber Richmond Moyer Lim Frye Sheppard Mccarty Avalos Booker Waller
Parra Woodward Jaramillo Krueger Rasmussen Brandt Peralta Donaldson Stuart
Faulkner Maynard Galindo Coffey Estes Sanford Burch Maddox Vo Oconnell Vu
Andersen Spence Mcpherson Church Schmitt Stanton Leal Cherry Compton Dudley
Sierra Pollard Alfaro Hester Proctor Lu Hinton Novak Good Madden Mccann Terrell
Jarvis Dickson Reyna Cantrell Mayo Branch Hendrix Rollins Rowland Whitney Duke
Odom Daugherty Travis Tang Archer
""".split()

# Interchangeable spellings of one sound: a record may carry another member
# of the person's group (Catherine/Kathryn, Steven/Stephen, Reid/Reed).
SPELLING_GROUPS = [
    ["Catherine", "Katherine", "Kathryn", "Cathryn", "Katharine"],
    ["Steven", "Stephen"], ["Jeffrey", "Jeffery", "Geoffrey"], ["Sara", "Sarah"],
    ["Ann", "Anne"], ["Brian", "Bryan"], ["Eric", "Erik"], ["Philip", "Phillip"],
    ["Alan", "Allan", "Allen"], ["Carl", "Karl"], ["Rebecca", "Rebekah"],
    ["Teresa", "Theresa"], ["Kristen", "Kristin", "Kristyn"], ["Megan", "Meghan"],
    ["Marc", "Mark"], ["Sean", "Shawn", "Shaun"], ["Lindsey", "Lindsay"],
    ["Caitlin", "Kaitlyn", "Katelyn"], ["Cheryl", "Sheryl"], ["Tracy", "Tracey"],
    ["Stacy", "Stacey"], ["Aaron", "Aron"], ["Nicholas", "Nicolas"],
    ["Jacqueline", "Jaqueline"], ["Louis", "Lewis"], ["Matthew", "Mathew"],
    ["Zachary", "Zackary"], ["Jasmine", "Jazmin"], ["Natalie", "Nathalie"],
    ["Allison", "Alison"], ["Ashley", "Ashlee"], ["Brittany", "Britney"],
    ["Frederick", "Fredrick"], ["Jon", "Jonn"], ["Isaac", "Issac"],
    ["Smith", "Smyth"], ["Thompson", "Thomson"], ["Peterson", "Petersen"],
    ["Reid", "Reed"], ["Gray", "Grey"], ["Clark", "Clarke"], ["Phillips", "Philips"],
    ["Stevens", "Stephens"], ["Hansen", "Hanson"], ["Olson", "Olsen"],
    ["Nielsen", "Nielson"], ["Matthews", "Mathews"], ["Schmidt", "Schmitt"],
    ["Carlson", "Karlson"], ["Anderson", "Andersen"], ["Jensen", "Jenson"],
    ["Lopez", "Lopes"], ["Gonzalez", "Gonzales"], ["Rodriguez", "Rodrigues"],
    ["Martinez", "Martines"], ["Hernandez", "Hernandes"], ["Meyer", "Meier", "Mayer"],
    ["Mcdonald", "Macdonald"], ["Mcguire", "Maguire"], ["Snyder", "Snider"],
    ["Bailey", "Baily"], ["Myers", "Meyers"], ["Wolfe", "Wolf"],
    ["Gutierrez", "Gutierres"], ["Vasquez", "Vazquez"], ["Larson", "Larsen"],
]

# Common US given names and the short forms people go by.
NICKNAMES = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy"],
    "Richard": ["Rick", "Dick", "Rich"], "James": ["Jim", "Jimmy", "Jamie"],
    "John": ["Jack", "Johnny"], "Michael": ["Mike", "Mikey"],
    "Thomas": ["Tom", "Tommy"], "Charles": ["Charlie", "Chuck"],
    "Joseph": ["Joe", "Joey"], "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"],
    "Anthony": ["Tony"], "Christopher": ["Chris"], "Edward": ["Ed", "Eddie", "Ted"],
    "Steven": ["Steve"], "Stephen": ["Steve"], "Kenneth": ["Ken", "Kenny"],
    "Joshua": ["Josh"], "Andrew": ["Andy", "Drew"], "Donald": ["Don", "Donnie"],
    "Ronald": ["Ron", "Ronnie"], "Timothy": ["Tim"], "Gregory": ["Greg"],
    "Jeffrey": ["Jeff"], "Benjamin": ["Ben"], "Samuel": ["Sam"],
    "Patrick": ["Pat"], "Alexander": ["Alex"], "Nicholas": ["Nick"],
    "Jonathan": ["Jon"], "Lawrence": ["Larry"], "Gerald": ["Jerry"],
    "Raymond": ["Ray"], "Frederick": ["Fred"], "Douglas": ["Doug"],
    "Peter": ["Pete"], "Walter": ["Walt"], "Henry": ["Hank"], "Albert": ["Al"],
    "Eugene": ["Gene"], "Leonard": ["Len", "Lenny"], "Zachary": ["Zach"],
    "Theodore": ["Ted", "Teddy"], "Vincent": ["Vince"], "Francis": ["Frank"],
    "Margaret": ["Peggy", "Maggie", "Meg"], "Elizabeth": ["Liz", "Beth", "Betty"],
    "Patricia": ["Pat", "Patty", "Trish"], "Jennifer": ["Jen", "Jenny"],
    "Katherine": ["Kate", "Kathy", "Katie"], "Catherine": ["Cathy", "Cate"],
    "Kathleen": ["Kathy", "Kate"], "Deborah": ["Debbie", "Deb"],
    "Debra": ["Debbie"], "Susan": ["Sue", "Susie"], "Barbara": ["Barb"],
    "Dorothy": ["Dot", "Dottie"], "Rebecca": ["Becky"], "Jessica": ["Jess"],
    "Christine": ["Chris", "Chrissy"], "Victoria": ["Vicky", "Tori"],
    "Cynthia": ["Cindy"], "Kimberly": ["Kim"], "Pamela": ["Pam"],
    "Sandra": ["Sandy"], "Judith": ["Judy"], "Theresa": ["Terry", "Tess"],
    "Abigail": ["Abby"], "Samantha": ["Sam"], "Alexandra": ["Alex", "Lexi"],
    "Melissa": ["Missy"], "Amanda": ["Mandy"], "Virginia": ["Ginny"],
    "Frances": ["Fran"], "Josephine": ["Jo", "Josie"], "Jacqueline": ["Jackie"],
    "Mary": ["Molly", "Mae"], "Stephanie": ["Steph"], "Christina": ["Tina"],
    "Suzanne": ["Sue"], "Madison": ["Maddie"],
}

# Placeholder values clerks type when they have no real name.
FAKE_GIVEN = ["Test", "Mr", "Mrs", "Unknown", "Xxx", "Na", "Baby"]

STREET_BASES = """
Main Oak Maple Cedar Elm Pine Walnut Chestnut Spruce Willow Birch Ash Hickory
Magnolia Sycamore Poplar Laurel Cherry Dogwood Juniper Park Lake Hill River
Spring Highland Ridge Valley Meadow Forest Church School Mill Center Market
Water Bridge Union Franklin Washington Jefferson Lincoln Madison Adams Jackson
Monroe Grant Wilson Harrison Cleveland Roosevelt Kennedy Hamilton Clinton
Lafayette Sunset Sunrise Prospect Pleasant Liberty Railroad Front Broad High
Central Grove Orchard Garden Vine Rose Lilac Holly Ivy Locust Cypress Redwood
Aspen Evergreen Fairview Greenwood Lakeview Riverside Hillcrest Woodland
Brookside Pinecrest Westwood Eastwood Northwood Southwood Kingston Princeton
Cambridge Oxford Hampton Windsor Stratford Devon Essex Sherwood Canterbury
Lexington Concord Salem Dover Aurora Summit Crescent Heritage Meridian
Academy College Depot Factory Quarry Canal Harbor Bay Shore Beach Ocean Cliff
Canyon Mesa Desert Prairie Plains Colonial Pioneer Frontier Ranch Country
Village Mountain Cherokee Apache Dakota Mohawk Seneca Shawnee Ottawa Navajo
Sequoia Madrone Alder Beech Linden Mulberry Pecan Palm Olive Peach Apple
Pearl Ruby Jade Amber Crystal Silver Gold Copper Iron Granite Marble Stone
Jasmine Camellia Azalea Daisy Violet Tulip Poppy Clover Heather Sage Thistle
Bluebird Robin Cardinal Sparrow Hawk Eagle Falcon Heron Swan Dove Quail
Deer Fox Bear Elk Wolf Bison Mustang Stallion Saddle Spur Wagon Carriage
""".split()
NUMBERED_STREETS = ["1st", "2nd", "3rd"] + [f"{n}th" for n in range(4, 21)] + [
    "21st", "22nd", "23rd", "24th", "25th", "30th", "31st", "32nd", "40th", "42nd"]
# Street types: full name, usual abbreviation.
STREET_TYPES = [("Street", "St", 30), ("Avenue", "Ave", 18), ("Road", "Rd", 12),
                ("Drive", "Dr", 14), ("Lane", "Ln", 7), ("Court", "Ct", 5),
                ("Boulevard", "Blvd", 3), ("Way", "Way", 4), ("Place", "Pl", 3),
                ("Circle", "Cir", 2), ("Terrace", "Ter", 1), ("Parkway", "Pkwy", 1)]
DIRECTIONS = [("North", "N"), ("South", "S"), ("East", "E"), ("West", "W")]

# City, state, first zip, number of zips, area codes, population (thousands).
CITIES = [
    ("New York", "NY", 10001, 40, ["212", "718", "646", "917", "347"], 8300),
    ("Los Angeles", "CA", 90001, 70, ["213", "310", "323", "818"], 3900),
    ("Chicago", "IL", 60601, 60, ["312", "773", "872"], 2700),
    ("Houston", "TX", 77001, 99, ["713", "281", "832"], 2300),
    ("Phoenix", "AZ", 85003, 52, ["602", "623"], 1600),
    ("Philadelphia", "PA", 19102, 52, ["215", "267"], 1600),
    ("San Antonio", "TX", 78201, 59, ["210"], 1450),
    ("San Diego", "CA", 92101, 39, ["619", "858"], 1390),
    ("Dallas", "TX", 75201, 53, ["214", "469", "972"], 1300),
    ("San Jose", "CA", 95110, 29, ["408", "669"], 1000),
    ("Austin", "TX", 78701, 58, ["512", "737"], 960),
    ("Jacksonville", "FL", 32202, 56, ["904"], 950),
    ("Fort Worth", "TX", 76102, 38, ["817", "682"], 930),
    ("Columbus", "OH", 43201, 39, ["614", "380"], 900),
    ("Charlotte", "NC", 28202, 78, ["704", "980"], 880),
    ("Indianapolis", "IN", 46201, 59, ["317", "463"], 880),
    ("San Francisco", "CA", 94102, 32, ["415", "628"], 810),
    ("Seattle", "WA", 98101, 98, ["206"], 740),
    ("Denver", "CO", 80202, 47, ["303", "720"], 710),
    ("Washington", "DC", 20001, 36, ["202"], 680),
    ("Nashville", "TN", 37201, 20, ["615", "629"], 680),
    ("Oklahoma City", "OK", 73102, 77, ["405"], 690),
    ("El Paso", "TX", 79901, 37, ["915"], 680),
    ("Boston", "MA", 2108, 29, ["617", "857"], 650),
    ("Portland", "OR", 97201, 35, ["503", "971"], 640),
    ("Las Vegas", "NV", 89101, 48, ["702", "725"], 650),
    ("Detroit", "MI", 48201, 38, ["313"], 630),
    ("Memphis", "TN", 38103, 38, ["901"], 620),
    ("Louisville", "KY", 40202, 97, ["502"], 630),
    ("Baltimore", "MD", 21201, 38, ["410", "443"], 570),
    ("Milwaukee", "WI", 53202, 31, ["414"], 560),
    ("Albuquerque", "NM", 87102, 21, ["505"], 560),
    ("Tucson", "AZ", 85701, 55, ["520"], 540),
    ("Fresno", "CA", 93701, 30, ["559"], 540),
    ("Sacramento", "CA", 95811, 27, ["916", "279"], 520),
    ("Kansas City", "MO", 64101, 62, ["816"], 510),
    ("Mesa", "AZ", 85201, 15, ["480"], 500),
    ("Atlanta", "GA", 30303, 47, ["404", "470", "678"], 500),
    ("Omaha", "NE", 68102, 62, ["402", "531"], 480),
    ("Colorado Springs", "CO", 80903, 48, ["719"], 480),
    ("Raleigh", "NC", 27601, 16, ["919", "984"], 470),
    ("Miami", "FL", 33125, 71, ["305", "786"], 450),
    ("Minneapolis", "MN", 55401, 54, ["612"], 430),
    ("Tulsa", "OK", 74103, 34, ["918"], 410),
    ("Cleveland", "OH", 44102, 33, ["216"], 370),
    ("New Orleans", "LA", 70112, 19, ["504"], 380),
    ("Tampa", "FL", 33602, 45, ["813"], 390),
    ("Pittsburgh", "PA", 15201, 42, ["412"], 300),
    ("Springfield", "IL", 62701, 11, ["217"], 115),
    ("Springfield", "MA", 1101, 28, ["413"], 155),
    ("Springfield", "MO", 65801, 20, ["417"], 170),
    ("Burlington", "VT", 5401, 7, ["802"], 45),
    ("Boise", "ID", 83702, 18, ["208"], 235),
    ("Fargo", "ND", 58102, 20, ["701"], 125),
    ("Cheyenne", "WY", 82001, 9, ["307"], 65),
]

# US households by number of people (Census CPS, about 2023; seven and more
# folded into six): mean about 2.45.
HOUSEHOLD_SIZES = [(1, 28.0), (2, 34.5), (3, 15.2), (4, 12.8), (5, 5.8), (6, 3.7)]

# Age of a householder (Census CPS bands).
HEAD_AGE_BANDS = [((18, 24), 6), ((25, 34), 16), ((35, 44), 17), ((45, 54), 17),
                  ((55, 64), 19), ((65, 74), 15), ((75, 95), 10)]

REFERENCE_DATE = datetime.date(2025, 12, 31)  # "today": ages are as of this day

# Record date windows per source.
WINDOWS = {
    "census": (datetime.date(2020, 4, 1), datetime.date(2023, 12, 31)),
    "tax": (datetime.date(2023, 2, 1), datetime.date(2025, 4, 15)),
    "benefits": (datetime.date(2021, 1, 1), datetime.date(2025, 12, 31)),
}
SOURCE_PREFIX = {"census": "c", "tax": "t", "benefits": "b"}
KIND = "person"

# ---------------------------------------------------------------------------
# Noise rates, per record and field. README.md quotes these.
# ---------------------------------------------------------------------------
RATES = {
    # given name
    "nickname": {"census": 0.10, "tax": 0.05, "benefits": 0.15},
    "given_spelling": 0.02, "given_typo": 0.025, "given_missing": 0.01,
    "fake_given": 0.002,
    # surname
    "surname_spelling": 0.015, "surname_typo": 0.025, "surname_missing": 0.005,
    "maiden_name": 0.04,       # a married woman who took her spouse's name
    "hyphen_part": 0.3,        # a hyphenated surname written as one part
    # OCR (scanned paper forms: tax most of all) per text field
    "ocr": {"census": 0.008, "tax": 0.025, "benefits": 0.003},
    # date of birth
    "dob_missing": {"census": 0.05, "benefits": 0.03},
    "dob_swap": 0.02,          # overall; applied only where it stays a valid date
    "dob_year": 0.01, "dob_digit": 0.005, "dob_placeholder": 0.001,
    # address
    "street_number_missing": 0.05, "street_missing": 0.05, "city_missing": 0.05,
    "state_missing": 0.05, "zip_missing": 0.06,
    "number_typo": 0.01, "street_typo": 0.02, "city_typo": 0.02, "zip_typo": 0.015,
    "unit_dropped": 0.3, "po_box": 0.03, "zip4": 0.2,
    # phone and SSN
    "phone_missing": 0.08, "phone_typo": 0.01,
    "ssn_missing": {"tax": 0.01, "benefits": 0.06},
    "ssn_other": 0.03,         # tax only: a household member's or a borrowed one
    "ssn_typo": 0.01, "ssn_placeholder": 0.003,
    # census extras
    "middle_full": 0.25, "middle_initial": 0.25, "suffix_kept": 0.5,
    "tax_middle_initial": 0.06, "tax_suffix_in_surname": 0.25,
}
# Probability of being in a source, by age.
SOURCE_ODDS = {
    "census": lambda age: 0.82,
    "tax": lambda age: 0.0 if age < 16 else 0.15 if age < 18 else 0.80 if age < 70 else 0.55,
    "benefits": lambda age: 0.35 if age < 18 else 0.22 if age < 65 else 0.90,
}
# Probability of a second record in the same source (a re-filed or repeated form).
DUPLICATE = {"census": 0.03, "tax": 0.10, "benefits": 0.08}
# Households with a move: three quarters of them move as a whole, in the rest
# one adult leaves; about 10 % of people then show a newer address somewhere.
MOVERS = 0.13
LANDLINE = 0.35      # households with a landline
TWINS = 0.02         # share of births that are twins
JUNIOR = 0.10        # first son of a father named after him


def rank_weights(n, first=1, scale=1.0, power=1.2, offset=10):
    """Weights for ranks first..first+n-1, falling like a Zipf curve."""
    return [scale * (r + offset) ** -power for r in range(first, first + n)]


class Weighted:
    """Draws from a fixed list with weights, by bisecting cumulative sums."""

    def __init__(self, items, weights):
        self.items = list(items)
        self.cumulative = []
        total = 0.0
        for w in weights:
            total += w
            self.cumulative.append(total)
        self.total = total

    def draw(self, rng):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def surname_pool(rng):
    """Real surnames with Census-like counts, then a long tail of made-up ones.

    The 2010 Census found about 40 % of people carry one of the thousand most
    common surnames and the rest share a very long tail. Without a tail, a
    small list would make every surname far too common; the tail continues
    the curve with plausible syllable combinations.
    """
    names, weights = [], []
    for name, count in TOP_SURNAMES:
        names.append(name)
        weights.append(float(count))
    seen = set(names)
    rank = len(names)
    last = float(TOP_SURNAMES[-1][1])

    def tail_weight(r):
        return last * (r / len(TOP_SURNAMES)) ** -0.84

    for name in MORE_SURNAMES:
        if name in seen:
            continue
        seen.add(name)
        rank += 1
        names.append(name)
        weights.append(tail_weight(rank))
    heads = ("Ab Al Ar Bar Bel Ben Ber Bl Br Bu Cal Car Cas Ch Cor Cr Dal Dav Del Don Dr "
             "Ed El Em Fal Far Fer Fl Fr Gal Gar Gil Gl Gr Hal Han Har Hav Hel Hen Hol Hor "
             "Hub Jan Jar Kal Kam Kel Ken Kir Kl Kr Lam Lan Lar Lev Lind Lor Mad Mal Mar "
             "Mel Mer Mil Mor Nad Nor Ol Or Pal Par Pen Per Pl Pr Quin Rad Ral Ras Ren Rich "
             "Rod Ros Sal San Sch Sel Sh Sk Sl Sor St Str Sw Tal Tan Ter Th Tr Tur Val Van "
             "Ver Vil Wal War Wes Wh Wil Win Wol Yar Zel Zim").split()
    tails = ("ak ald an ando ani ard as berg by dahl den ell elli er ers ez field ford "
             "gaard gren ham hart holm ian ich ick ino ins ison kin ko land ley lin lund "
             "man mann mond more ner nik off ova ovich owski quist sen ski son stein stone "
             "strom ton well wick wood worth zak").split()
    made = [h + t for h in heads for t in tails]
    rng.shuffle(made)
    for name in made:
        if name in seen:
            continue
        seen.add(name)
        rank += 1
        names.append(name)
        weights.append(tail_weight(rank))
    return Weighted(names, weights)


# ---------------------------------------------------------------------------
# Damage: typing, OCR, other spellings.
# ---------------------------------------------------------------------------
KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
NEIGHBOURS = {}
for row_index, row in enumerate(KEYBOARD):
    for col, ch in enumerate(row):
        near = []
        for dr in (-1, 0, 1):
            r = row_index + dr
            if 0 <= r < len(KEYBOARD):
                for dc in (-1, 0, 1):
                    c = col + dc
                    if (dr or dc) and 0 <= c < len(KEYBOARD[r]):
                        near.append(KEYBOARD[r][c])
        NEIGHBOURS[ch] = "".join(near)
DIGIT_NEIGHBOURS = {"0": "98", "1": "24", "2": "13", "3": "24", "4": "35", "5": "46",
                    "6": "57", "7": "68", "8": "79", "9": "80"}

SPELLING = {}
for group in SPELLING_GROUPS:
    for member in group:
        SPELLING[member] = [m for m in group if m != member]

# Sound-alike rewrites for names outside the table: (from, to).
SOUND_RULES = [("ph", "f"), ("f", "ph"), ("ck", "k"), ("c", "k"), ("k", "c"),
               ("y", "i"), ("i", "y"), ("ie", "y"), ("ey", "y"), ("ei", "ie"),
               ("ll", "l"), ("tt", "t"), ("nn", "n"), ("ss", "s"), ("son", "sen"),
               ("sen", "son"), ("man", "mann"), ("z", "s"), ("s", "z"), ("ou", "ow")]

# OCR confusions: (from, to), tried in a random order.
OCR_RULES = [("rn", "m"), ("m", "rn"), ("cl", "d"), ("l", "1"), ("I", "1"), ("O", "0"),
             ("o", "0"), ("S", "5"), ("s", "5"), ("B", "8"), ("vv", "w"), ("e", "c"),
             ("0", "O"), ("1", "l"), ("5", "S"), ("8", "B")]


def match_case(template, text):
    """`text` in the case style of `template` (upper, or capitalised)."""
    if template.isupper() and len(template) > 1:
        return text.upper()
    return text[:1].upper() + text[1:]


def typo(rng, text, digits=False):
    """One keyboard slip: insert, delete, substitute or transpose."""
    if len(text) < 2:
        return text
    i = rng.randrange(len(text))
    kind = rng.randrange(4)
    ch = text[i]
    low = ch.lower()

    def near(c):
        if digits or c.isdigit():
            return rng.choice(DIGIT_NEIGHBOURS.get(c, "0123456789"))
        pool = NEIGHBOURS.get(c.lower())
        if not pool:
            return c
        out = rng.choice(pool)
        return out.upper() if c.isupper() else out

    if kind == 0:      # insert a neighbouring key after position i
        return text[:i + 1] + near(ch) + text[i + 1:]
    if kind == 1 and len(text) > 3:  # delete
        return text[:i] + text[i + 1:]
    if kind == 2 and (low.isalpha() or ch.isdigit()):  # substitute
        return text[:i] + near(ch) + text[i + 1:]
    j = min(i + 1, len(text) - 1)
    if i == j:
        i, j = i - 1, i
    return text[:i] + text[j] + text[i] + text[j + 1:]  # transpose


def ocr(rng, text):
    """One OCR confusion (rn/m, l/1, O/0, S/5, ...), or the text unchanged."""
    rules = list(OCR_RULES)
    rng.shuffle(rules)
    for a, b in rules:
        at = text.find(a)
        if at >= 0:
            return text[:at] + b + text[at + len(a):]
    return text


def respell(rng, name):
    """The same sound written another way."""
    if name in SPELLING:
        return rng.choice(SPELLING[name])
    lower = name.lower()
    rules = list(SOUND_RULES)
    rng.shuffle(rules)
    for a, b in rules:
        at = lower.find(a, 1)  # keep the first letter, as people usually do
        if at > 0:
            return match_case(name, lower[:at] + b + lower[at + len(a):])
    return name


# ---------------------------------------------------------------------------
# The population.
# ---------------------------------------------------------------------------
class Person:
    __slots__ = ("pid", "given", "middle", "surname", "maiden", "suffix", "sex", "dob",
                 "ssn", "mobile", "household", "address", "new_address", "move_date",
                 "new_landline")

    def __init__(self, pid):
        self.pid = pid
        self.middle = None
        self.maiden = None
        self.suffix = None
        self.mobile = None
        self.new_address = None
        self.move_date = None
        self.new_landline = None


class Household:
    __slots__ = ("members", "address", "landline", "city")

    def __init__(self, address, landline, city):
        self.members = []
        self.address = address
        self.landline = landline
        self.city = city


class World:
    """Everything drawn from the seed, in a fixed order."""

    def __init__(self, rng):
        self.rng = rng
        self.male = Weighted(MALE_NAMES, rank_weights(len(MALE_NAMES)))
        self.female = Weighted(FEMALE_NAMES, rank_weights(len(FEMALE_NAMES)))
        self.surnames = surname_pool(rng)
        self.cities = Weighted(CITIES, [c[5] for c in CITIES])
        streets = [b for b in STREET_BASES] + NUMBERED_STREETS
        self.streets = Weighted(streets, rank_weights(len(streets), power=0.6, offset=20))
        self.street_types = Weighted(STREET_TYPES, [t[2] for t in STREET_TYPES])
        self.sizes = Weighted([s for s, _ in HOUSEHOLD_SIZES], [w for _, w in HOUSEHOLD_SIZES])
        self.head_ages = Weighted([b for b, _ in HEAD_AGE_BANDS], [w for _, w in HEAD_AGE_BANDS])
        self.ssns = set()
        self.phones = set()
        self.people = []
        self.households = []

    # -- identifiers ------------------------------------------------------
    def new_ssn(self):
        rng = self.rng
        while True:
            area = rng.randrange(1, 900)
            if area == 666:
                continue
            ssn = f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
            if ssn not in self.ssns:
                self.ssns.add(ssn)
                return ssn

    def new_phone(self, city):
        """A NANP number: area code of the city, exchange and line not reserved."""
        rng = self.rng
        while True:
            area = rng.choice(city[4])
            exchange = f"{rng.randrange(2, 10)}{rng.randrange(10)}{rng.randrange(10)}"
            if exchange[1:] == "11" or exchange == "555":
                continue
            phone = f"{area}{exchange}{rng.randrange(10000):04d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    # -- places -------------------------------------------------------------
    def new_address(self, city=None):
        rng = self.rng
        city = city or self.cities.draw(rng)
        base = self.streets.draw(rng)
        stype = self.street_types.draw(rng)
        direction = rng.choice(DIRECTIONS) if rng.random() < 0.12 else None
        # House numbers: mostly short, a few long (rural and suburban grids).
        digits = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 4, 5])
        number = str(rng.randrange(10 ** (digits - 1), 10 ** digits))
        # Apartments are more common in big cities.
        unit = None
        if rng.random() < (0.35 if city[5] >= 1000 else 0.18):
            unit = str(rng.randrange(1, 40)) + (rng.choice("ABCD") if rng.random() < 0.3 else "")
        zipcode = f"{city[2] + rng.randrange(city[3]):05d}"
        return {"number": number, "direction": direction, "base": base, "type": stype,
                "unit": unit, "city": city, "zip": zipcode}

    # -- people -------------------------------------------------------------
    def given_name(self, sex, avoid=()):
        table = self.male if sex == "M" else self.female
        for _ in range(50):
            name = table.draw(self.rng)
            if name not in avoid:
                return name
        return name

    def dob_for_age(self, age):
        rng = self.rng
        start = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age - 1) + datetime.timedelta(days=1)
        return start + datetime.timedelta(days=rng.randrange(365))

    def person(self, household, sex, age, surname, given=None, avoid=()):
        rng = self.rng
        p = Person(f"p-{len(self.people) + 1:06d}")
        p.sex = sex
        p.given = given or self.given_name(sex, avoid)
        if rng.random() < 0.75:  # most Americans have a middle name
            p.middle = self.given_name(sex, avoid=(p.given,))
        p.surname = surname
        p.dob = self.dob_for_age(age)
        p.ssn = self.new_ssn()
        mobile_odds = 0.9 if age >= 18 else 0.7 if age >= 13 else 0.0
        if rng.random() < mobile_odds:
            # People keep their number when they move: some are from elsewhere.
            city = household.city if rng.random() < 0.8 else self.cities.draw(rng)
            p.mobile = self.new_phone(city)
        p.household = household
        p.address = household.address
        household.members.append(p)
        self.people.append(p)
        return p

    def age_of(self, p):
        return (REFERENCE_DATE - p.dob).days // 365

    def head_age(self, low=18, high=95):
        rng = self.rng
        for _ in range(50):
            a, b = self.head_ages.draw(rng)
            age = rng.randint(a, b)
            if low <= age <= high:
                return age
        return rng.randint(low, high)

    def household(self, size):
        rng = self.rng
        address = self.new_address()
        city = address["city"]
        landline = self.new_phone(city) if rng.random() < LANDLINE else None
        h = Household(address, landline, city)
        self.households.append(h)
        surname = self.surnames.draw(rng)

        if size == 1:
            self.person(h, rng.choice("MF"), self.head_age(), surname)
            return h
        kind = rng.random()
        if size == 2:
            kind = ("couple" if kind < 0.62 else "parent" if kind < 0.76
                    else "roommates" if kind < 0.90 else "siblings")
        else:
            kind = ("couple" if kind < 0.70 else "parent" if kind < 0.88
                    else "roommates" if size <= 4 and kind < 0.94 else "couple")

        if kind == "roommates":
            for _ in range(size):
                self.person(h, rng.choice("MF"), rng.randint(19, 40), self.surnames.draw(rng))
            return h
        if kind == "siblings":
            age = self.head_age(low=20, high=90)
            a = self.person(h, rng.choice("MF"), age, surname)
            self.person(h, rng.choice("MF"), max(18, age + rng.randint(-8, 8)), surname,
                        avoid=(a.given,))
            return h

        children = size - (2 if kind == "couple" else 1)
        # A grandparent in some larger families (three generations).
        grandparent = kind == "couple" and size >= 4 and rng.random() < 0.08
        if grandparent:
            children -= 1
        head_age = self.head_age(low=24, high=58) if children else self.head_age(low=20)
        father = None
        if kind == "couple":
            same_sex = rng.random() < 0.015
            head = self.person(h, "M" if not same_sex else rng.choice("MF"), head_age, surname)
            # Husbands are about two years older on average.
            spouse_age = max(18, head_age - 2 + round(rng.gauss(0, 3)))
            shares = rng.random() < 0.78
            spouse_sex = head.sex if same_sex else "F"
            spouse_surname = surname if shares else self.surnames.draw(rng)
            spouse = self.person(h, spouse_sex, spouse_age, spouse_surname, avoid=(head.given,))
            if shares and spouse_sex == "F":
                spouse.maiden = self.surnames.draw(rng)
            if head.sex == "M":
                father = head
            parents_age = min(head_age, spouse_age)
            # Children of parents with different surnames: the father's,
            # sometimes both joined by a hyphen.
            child_surname = surname
            if not shares and rng.random() < 0.15:
                child_surname = f"{surname}-{spouse_surname}"
        else:
            head = self.person(h, "F" if rng.random() < 0.8 else "M", head_age, surname)
            if head.sex == "M":
                father = head
            parents_age = head_age
            child_surname = surname if rng.random() < 0.8 else self.surnames.draw(rng)

        if grandparent:
            self.person(h, rng.choice("MF"), min(99, head_age + rng.randint(22, 38)), surname)

        # Children: born when the younger parent was 18-42; adult children
        # living at home are up to about 30.
        used = [m.given for m in h.members]
        made_junior = False
        while children > 0:
            oldest = min(30, parents_age - 18)
            youngest = max(0, parents_age - 45)
            age = rng.randint(youngest, max(youngest, oldest))
            if children >= 2 and rng.random() < TWINS:
                twins = []
                for _ in range(2):
                    kid = self.person(h, rng.choice("MF"), age, child_surname, avoid=used)
                    used.append(kid.given)
                    twins.append(kid)
                twins[1].dob = twins[0].dob  # same day, of course
                children -= 2
                continue
            sex = rng.choice("MF")
            if (sex == "M" and father and not made_junior and father.surname == child_surname
                    and rng.random() < JUNIOR):
                kid = self.person(h, "M", age, child_surname, given=father.given)
                kid.middle = father.middle
                kid.suffix, father.suffix = "Jr", "Sr"
                made_junior = True
            else:
                kid = self.person(h, sex, age, child_surname, avoid=used)
            used.append(kid.given)
            children -= 1
        return h

    def populate(self, people):
        rng = self.rng
        while len(self.people) < people:
            size = min(self.sizes.draw(rng), people - len(self.people))
            self.household(size)
        self.moves()

    def moves(self):
        """About 10 % of people get a newer address: mostly whole households,
        sometimes one adult leaving (for a new home of their own)."""
        rng = self.rng
        lo, hi = WINDOWS["census"][0], WINDOWS["benefits"][1]
        span = (hi - lo).days
        for h in self.households:
            r = rng.random()
            if r < MOVERS * 0.75:
                same_city = rng.random() < 0.6
                address = self.new_address(h.city if same_city else None)
                landline = self.new_phone(address["city"]) if h.landline and rng.random() < 0.6 else None
                when = lo + datetime.timedelta(days=rng.randrange(span))
                for p in h.members:
                    p.new_address, p.move_date, p.new_landline = address, when, landline
            elif r < MOVERS:
                adults = [p for p in h.members if self.age_of(p) >= 18]
                if adults:
                    p = rng.choice(adults)
                    p.new_address = self.new_address(h.city if rng.random() < 0.6 else None)
                    p.move_date = lo + datetime.timedelta(days=rng.randrange(span))


# ---------------------------------------------------------------------------
# Records.
# ---------------------------------------------------------------------------
def record_date(rng, source, person):
    """A day in the source's window, a month or more after the person was
    born; None when the window closed before that."""
    lo, hi = WINDOWS[source]
    lo = max(lo, person.dob + datetime.timedelta(days=30))
    if lo > hi:
        return None
    return lo + datetime.timedelta(days=rng.randrange((hi - lo).days + 1))


def plan_records(world):
    """(person, source, date) for every record, in person order."""
    rng = world.rng
    plans = []
    for p in world.people:
        age = world.age_of(p)
        chosen = []
        for source in ("census", "tax", "benefits"):
            if rng.random() < SOURCE_ODDS[source](age):
                chosen.append(source)
        if not chosen:  # everyone is known somewhere
            chosen = [rng.choice(["census", "benefits"] if age < 16 else ["census", "tax", "benefits"])]
        mine = []
        for source in chosen:
            copies = 2 if rng.random() < DUPLICATE[source] else 1
            for _ in range(copies):
                when = record_date(rng, source, p)
                if when is None:
                    # Born after the census: the benefits office knows the
                    # baby (on the last day of its window at the latest).
                    source = "benefits"
                    when = record_date(rng, source, p) or WINDOWS[source][1]
                mine.append((source, when))
        if p.move_date:
            place_move(rng, p, sorted(w for s, w in mine if s in ("census", "tax")))
        plans.extend((p, s, w) for s, w in mine)
    return plans


def place_move(rng, p, dated):
    """Put a mover's move where their records show it: between the first and
    the last record with an address when there are two or more (some at the
    old address, some at the new), else just before the only one."""
    if len(dated) >= 2 and dated[0] < dated[-1]:
        span = (dated[-1] - dated[0]).days
        p.move_date = dated[0] + datetime.timedelta(days=rng.randrange(1, span + 1))
    elif dated:
        p.move_date = dated[0] - datetime.timedelta(days=rng.randrange(1, 60))


def other_ssn(rng, world, p):
    """Someone else's SSN: a household member's, else a borrowed one."""
    others = [m for m in p.household.members if m is not p]
    if others and rng.random() < 0.6:
        return rng.choice(others).ssn
    return rng.choice(world.people).ssn


def mistype_digits(rng, digits):
    i = rng.randrange(len(digits))
    if rng.random() < 0.5 and i + 1 < len(digits):  # transposed pair
        return digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]
    return digits[:i] + rng.choice(DIGIT_NEIGHBOURS[digits[i]]) + digits[i + 1:]


def misspelt(rng, name, source, field):
    """A name after the clerk: another spelling of its sound, a typo, an OCR
    misreading, each at the field's rate; or None when left blank."""
    if rng.random() < RATES[field + "_spelling"]:
        name = respell(rng, name)
    if rng.random() < RATES[field + "_typo"]:
        name = typo(rng, name)
    if rng.random() < RATES["ocr"][source]:
        name = ocr(rng, name)
    if rng.random() < RATES[field + "_missing"]:
        return None
    return name


def damage_given(rng, p, source, age):
    name = p.given
    if age < 1 and source == "benefits" and rng.random() < 0.15:
        return "Baby Boy" if p.sex == "M" else "Baby Girl"
    if rng.random() < RATES["fake_given"]:
        return rng.choice(FAKE_GIVEN)
    if name in NICKNAMES and rng.random() < RATES["nickname"][source]:
        name = rng.choice(NICKNAMES[name])
    return misspelt(rng, name, source, "given")


def damage_surname(rng, p, source):
    name = p.surname
    if p.maiden and rng.random() < RATES["maiden_name"]:
        name = p.maiden
    if "-" in name and rng.random() < RATES["hyphen_part"]:
        name = rng.choice(name.split("-"))
    return misspelt(rng, name, source, "surname")


def damage_dob(rng, p, source):
    """(year, month, day) as written, or None."""
    if rng.random() < RATES["dob_missing"][source]:
        return None
    if rng.random() < RATES["dob_placeholder"]:
        return (1900, 1, 1)
    y, m, d = p.dob.year, p.dob.month, p.dob.day
    # Swapping day and month only stays a date when the day is 12 or less
    # (about 37 % of days, minus day == month); scale so ~2 % of all records swap.
    if d <= 12 and d != m and rng.random() < RATES["dob_swap"] / 0.37:
        m, d = d, m
    if rng.random() < RATES["dob_year"]:
        y += rng.choice((-1, 1))
    if rng.random() < RATES["dob_digit"]:
        d2 = int(mistype_digits(rng, f"{d:02d}"))
        if 1 <= d2 <= 28:
            d = d2
    return (y, m, d)


def street_line(rng, address, upper):
    """The street as this record writes it: abbreviations, unit or not."""
    full, short, _ = address["type"]
    style = rng.random()
    stype = short if style < 0.70 else full if style < 0.95 else short + "."
    parts = []
    if address["direction"]:
        parts.append(address["direction"][1] if rng.random() < 0.7 else address["direction"][0])
    parts += [address["base"], stype]
    if address["unit"] and rng.random() >= RATES["unit_dropped"]:
        u = rng.random()
        parts.append(("Apt " if u < 0.6 else "#" if u < 0.85 else "Unit ") + address["unit"])
    line = " ".join(parts)
    return line.upper() if upper else line


def damage_address(rng, p, source, when, upper):
    """The address fields of a record (census, tax)."""
    address = p.address
    if p.new_address and when >= p.move_date:
        address = p.new_address
    city, state = address["city"][0], address["city"][1]
    fields = {}
    if source == "tax" and rng.random() < RATES["po_box"]:
        fields["street"] = ("PO BOX " if upper else "PO Box ") + str(rng.randrange(1, 9999))
    else:
        number = address["number"]
        if rng.random() < RATES["number_typo"]:
            number = typo(rng, number, digits=True)
        if rng.random() < RATES["ocr"][source]:
            number = ocr(rng, number)
        if rng.random() >= RATES["street_number_missing"]:
            fields["street_number"] = number
        street = street_line(rng, address, upper)
        if rng.random() < RATES["street_typo"]:
            street = typo(rng, street)
        if rng.random() < RATES["ocr"][source]:
            street = ocr(rng, street)
        if rng.random() >= RATES["street_missing"]:
            fields["street"] = street
    if rng.random() < RATES["city_typo"]:
        city = typo(rng, city)
    if rng.random() >= RATES["city_missing"]:
        fields["city"] = city.upper() if upper else city
    if rng.random() >= RATES["state_missing"]:
        fields["state"] = state
    zipcode = address["zip"]
    if rng.random() < RATES["zip_typo"]:
        zipcode = mistype_digits(rng, zipcode)
    if source == "tax" and rng.random() < RATES["zip4"]:
        zipcode += f"-{rng.randrange(1, 10000):04d}"
    if rng.random() >= RATES["zip_missing"]:
        fields["zip"] = zipcode
    return fields, address


def phone_of(rng, p, address_now, age):
    """The number a form gets: the home landline, or the person's mobile
    (a child's form gets a parent's)."""
    landline = p.household.landline
    if p.new_address is not None and address_now is p.new_address:
        landline = p.new_landline
    options = [x for x in (landline, p.mobile) if x]
    if age < 18 and not p.mobile:
        parents = [m.mobile for m in p.household.members if m.mobile and m is not p
                   and (REFERENCE_DATE - m.dob).days // 365 >= 18]
        options += parents[:1]
    if not options or rng.random() < RATES["phone_missing"]:
        return None
    phone = rng.choice(options)
    if rng.random() < RATES["phone_typo"]:
        phone = phone[:3] + mistype_digits(rng, phone[3:])
        if phone[3] in "01":  # keep the exchange valid-looking
            phone = phone[:3] + "2" + phone[4:]
    return phone


def ssn_of(rng, world, p, source):
    if rng.random() < RATES["ssn_missing"][source]:
        return None
    if source == "benefits" and rng.random() < RATES["ssn_placeholder"]:
        return rng.choice(["000000000", "999999999", "123456789"])
    ssn = p.ssn
    if source == "tax" and rng.random() < RATES["ssn_other"]:
        ssn = other_ssn(rng, world, p)
    if rng.random() < RATES["ssn_typo"]:
        ssn = mistype_digits(rng, ssn)
    return ssn


def make_record(world, p, source, when):
    """(attributes, ssn or None, phone or None) of one record."""
    rng = world.rng
    age = world.age_of(p)
    upper = source == "tax"  # the tax system keeps everything in capitals
    attrs = {}
    given = damage_given(rng, p, source, age)
    if source == "tax" and given and p.middle and rng.random() < RATES["tax_middle_initial"]:
        given = f"{given} {p.middle[0]}"
    if given:
        attrs["given_name"] = given.upper() if upper else given
    if source == "census" and p.middle:
        r = rng.random()
        if r < RATES["middle_full"]:
            attrs["middle_name"] = p.middle
        elif r < RATES["middle_full"] + RATES["middle_initial"]:
            attrs["middle_name"] = p.middle[0]
    surname = damage_surname(rng, p, source)
    if surname and source == "tax" and p.suffix and rng.random() < RATES["tax_suffix_in_surname"]:
        surname = f"{surname} {p.suffix}"
    if surname:
        attrs["surname"] = surname.upper() if upper else surname
    if source == "census" and p.suffix and rng.random() < RATES["suffix_kept"]:
        attrs["suffix"] = p.suffix
    if source in ("census", "benefits"):
        dob = damage_dob(rng, p, source)
        if dob:
            y, m, d = dob
            attrs["date_of_birth"] = (f"{y:04d}-{m:02d}-{d:02d}" if source == "census"
                                      else f"{m:02d}/{d:02d}/{y:04d}")
    address_now = p.address
    if source in ("census", "tax"):
        fields, address_now = damage_address(rng, p, source, when, upper)
        attrs.update(fields)
    elif p.new_address and when >= p.move_date:
        address_now = p.new_address
    phone = phone_of(rng, p, address_now, age) if source in ("census", "benefits") else None
    ssn = ssn_of(rng, world, p, source) if source in ("tax", "benefits") else None
    return attrs, ssn, phone


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20000, help="people in the population (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--output", default="-", help="observations file (default stdout)")
    parser.add_argument("--truth", help="also write the truth (record -> person) here")
    parser.add_argument("--no-ssn", action="store_true", help="leave every SSN out")
    args = parser.parse_args(argv)
    if args.people < 1:
        parser.error("--people must be at least 1")

    rng = random.Random(args.seed)
    world = World(rng)
    world.populate(args.people)
    plans = plan_records(world)

    # Damage every record first, then number each source's records in a
    # random order (so neighbouring ids are not one household), then shuffle
    # the whole file.
    records = []
    for p, source, when in plans:
        attrs, ssn, phone = make_record(world, p, source, when)
        records.append([source, None, when, p, attrs, ssn, phone])
    for source in ("census", "tax", "benefits"):
        mine = [r for r in records if r[0] == source]
        rng.shuffle(mine)
        for n, r in enumerate(mine, 1):
            r[1] = f"{SOURCE_PREFIX[source]}-{n:06d}"
    order = list(records)
    rng.shuffle(order)

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        for source, rid, when, p, attrs, ssn, phone in order:
            identifiers = []
            if ssn and not args.no_ssn:
                identifiers.append({"type": "ssn", "value": f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}"})
            if phone:
                identifiers.append({"type": "phone", "value": "+1" + phone})
            out.write(dumps({"source": source, "id": rid,
                             "ts": when.isoformat() + "T00:00:00Z", "kind": KIND,
                             "identifiers": identifiers, "attributes": attrs}) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()

    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as truth:
            for r in sorted(records, key=lambda r: (r[0], r[1])):
                truth.write(dumps({"source": r[0], "id": r[1], "kind": KIND, "entity": r[3].pid}) + "\n")

    report(world, records, args)


def report(world, records, args):
    """A few figures on stderr, to check the workload looks as intended."""
    people = world.people
    by_source = {s: sum(1 for r in records if r[0] == s) for s in ("census", "tax", "benefits")}
    per_person = {}
    for r in records:
        per_person.setdefault(r[3].pid, set()).add(r[0])
    sources_hist = {}
    for s in per_person.values():
        sources_hist[len(s)] = sources_hist.get(len(s), 0) + 1
    dup = len(records) - sum(1 for _ in {(r[3].pid, r[0]) for r in records})
    moved_seen = {r[3].pid for r in records
                  if r[3].new_address and r[0] in ("census", "tax") and r[2] >= r[3].move_date}
    twins = 0
    juniors = sum(1 for p in people if p.suffix == "Jr")
    for h in world.households:
        dobs = {}
        for m in h.members:
            dobs.setdefault(m.dob, []).append(m)
        twins += sum(1 for v in dobs.values() if len(v) >= 2)
    stats = {
        "people": len(people), "households": len(world.households),
        "mean_household_size": round(len(people) / len(world.households), 2),
        "records": len(records), "by_source": by_source,
        "people_in_1_2_3_sources": [sources_hist.get(k, 0) for k in (1, 2, 3)],
        "duplicate_records_in_a_source": dup,
        "people_seen_at_a_newer_address": len(moved_seen),
        "twin_pairs": twins, "junior_senior_pairs": juniors,
        "seed": args.seed, "ssn": not args.no_ssn,
    }
    print(dumps(stats), file=sys.stderr)


if __name__ == "__main__":
    main()
