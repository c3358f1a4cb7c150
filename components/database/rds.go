package database

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/rds"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// RDSEngineVersion is the pinned PostgreSQL major.minor on RDS.
const RDSEngineVersion = "16.9"

// RDSArgs configure NewRDS.
type RDSArgs struct {
	// Identifier is the DB instance identifier (deterministic, at most 63 characters).
	Identifier string
	VpcID      pulumi.StringInput
	SubnetIDs  pulumi.StringArrayInput
	// ClientSecurityGroupID is the only security group allowed in (the nodes').
	ClientSecurityGroupID pulumi.StringInput
	InstanceClass         string
	StorageGB             int
	BackupDays            int
	// Protect turns on deletion protection, Multi-AZ and a final snapshot (prod stacks).
	Protect bool
}

// RDS is a private, encrypted PostgreSQL instance whose master password RDS
// generates and keeps in Secrets Manager: it is never in Pulumi's state.
type RDS struct {
	pulumi.ResourceState
	Address pulumi.StringOutput `pulumi:"address"`
	Port    pulumi.IntOutput    `pulumi:"port"`
	DBName  string
	// MasterSecretARN is the Secrets Manager secret holding username and password.
	MasterSecretARN pulumi.StringOutput `pulumi:"masterSecretArn"`
}

// NewRDS declares the instance, its subnet group and security group.
func NewRDS(ctx *pulumi.Context, name string, args *RDSArgs, opts ...pulumi.ResourceOption) (*RDS, error) {
	if args == nil || args.Identifier == "" || len(args.Identifier) > 63 {
		return nil, fmt.Errorf("database: RDS identifier must be 1-63 characters")
	}
	if args.StorageGB < 20 || args.BackupDays < 1 || args.BackupDays > 35 {
		return nil, fmt.Errorf("database: RDS storage must be >= 20 GiB and backups 1-35 days (got %d GiB, %d days)", args.StorageGB, args.BackupDays)
	}
	d := &RDS{DBName: "app"}
	if err := ctx.RegisterComponentResource("liftoff:database:RDS", name, d, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(d)
	subnets, err := rds.NewSubnetGroup(ctx, name, &rds.SubnetGroupArgs{SubnetIds: args.SubnetIDs,
		Description: pulumi.String("private subnets of " + args.Identifier)}, child)
	if err != nil {
		return nil, err
	}
	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{VpcId: args.VpcID,
		Description: pulumi.String("PostgreSQL of " + args.Identifier + ": reachable from the cluster's nodes only")}, child)
	if err != nil {
		return nil, err
	}
	if _, err := vpc.NewSecurityGroupIngressRule(ctx, name+"-from-nodes", &vpc.SecurityGroupIngressRuleArgs{SecurityGroupId: sg.ID(),
		ReferencedSecurityGroupId: args.ClientSecurityGroupID, IpProtocol: pulumi.String("tcp"), FromPort: pulumi.Int(5432), ToPort: pulumi.Int(5432),
		Description: pulumi.String("PostgreSQL from the nodes")}, child); err != nil {
		return nil, err
	}
	in := &rds.InstanceArgs{
		Identifier: pulumi.String(args.Identifier), Engine: pulumi.String("postgres"), EngineVersion: pulumi.String(RDSEngineVersion),
		InstanceClass: pulumi.String(args.InstanceClass), AllocatedStorage: pulumi.Int(args.StorageGB), MaxAllocatedStorage: pulumi.Int(args.StorageGB * 5),
		StorageType: pulumi.String("gp3"), StorageEncrypted: pulumi.Bool(true),
		DbName: pulumi.String(d.DBName), Username: pulumi.String("app"), ManageMasterUserPassword: pulumi.Bool(true),
		DbSubnetGroupName: subnets.Name, VpcSecurityGroupIds: pulumi.StringArray{sg.ID()}, PubliclyAccessible: pulumi.Bool(false),
		BackupRetentionPeriod: pulumi.Int(args.BackupDays), CopyTagsToSnapshot: pulumi.Bool(true),
		AutoMinorVersionUpgrade: pulumi.Bool(true), ApplyImmediately: pulumi.Bool(!args.Protect),
		DeletionProtection: pulumi.Bool(args.Protect), MultiAz: pulumi.Bool(args.Protect),
		SkipFinalSnapshot: pulumi.Bool(!args.Protect),
	}
	if args.Protect {
		in.FinalSnapshotIdentifier = pulumi.String(args.Identifier + "-final")
	}
	db, err := rds.NewInstance(ctx, name, in, child)
	if err != nil {
		return nil, err
	}
	d.Address, d.Port = db.Address, db.Port
	d.MasterSecretARN = db.MasterUserSecrets.Index(pulumi.Int(0)).SecretArn().Elem()
	return d, ctx.RegisterResourceOutputs(d, pulumi.Map{"address": d.Address, "port": d.Port, "masterSecretArn": d.MasterSecretARN})
}
